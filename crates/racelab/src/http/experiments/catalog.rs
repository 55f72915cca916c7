//! `GET /workloads`: each workload `POST /experiments` takes, with its invariant (name and one
//! sentence) and its strategies (which are meant to keep it), so the page's picker and any client list
//! what the server runs rather than a copy that drifts. Read from [`Workload::ALL`]; nothing is run.

use axum::Json;
use axum::extract::State;
use racelab_core::Workload;
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::state::AppState;

/// One strategy of a workload.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkloadStrategyView {
    pub name: &'static str,
    /// Meant to keep the invariant (a safe strategy whose invariant breaks is a bug).
    pub safe: bool,
}

/// One workload: its invariant and its strategies.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkloadView {
    /// The name `workload` takes.
    pub name: &'static str,
    /// The invariant's name (`invariant.name` in a result).
    pub invariant: &'static str,
    /// The invariant in one sentence.
    pub sentence: &'static str,
    /// The strategies `strategies` may name for it (the counter's: those this database supports).
    pub strategies: Vec<WorkloadStrategyView>,
}

/// Every workload, in order, with its invariant and strategies.
#[utoipa::path(get, path = "/workloads", tag = "experiments",
    responses((status = 200, description = "The workloads", body = Vec<WorkloadView>)))]
pub async fn list_workloads(State(state): State<AppState>) -> Json<Vec<WorkloadView>> {
    let backend = state.backend();
    let views = Workload::ALL.into_iter().map(|workload| {
        let strategies = workload
            .strategies()
            .into_iter()
            .filter(|name| {
                workload != Workload::Counter
                    || name.parse::<racelab_core::Strategy>().is_ok_and(|s| s.supported_on(backend))
            })
            .map(|name| WorkloadStrategyView { name, safe: workload.is_safe(name).unwrap_or(false) })
            .collect();
        WorkloadView {
            name: workload.name(),
            invariant: workload.invariant(),
            sentence: workload.invariant_sentence(),
            strategies,
        }
    });
    Json(views.collect())
}
