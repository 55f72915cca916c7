//! A database account of a test's own that may hold only a few connections at once: a PostgreSQL role
//! with `CONNECTION LIMIT n`, a MariaDB/MySQL user `WITH MAX_USER_CONNECTIONS n`. It runs the server
//! out of connections for one test without exhausting the shared server for everyone else.

use crate::TestDb;
use racelab_core::Backend;
use sqlx::{AssertSqlSafe, Connection, Executor};

/// The account, dropped (with whatever it owns) when this value is; declare it after the [`TestDb`]
/// it works in, so that it is dropped before the database is.
pub struct LimitedAccount {
    /// The test database's URL, as this account.
    pub url: String,
    name: String,
    backend: Backend,
    admin_url: String,
}

impl LimitedAccount {
    pub async fn create(test: &TestDb, limit: u32) -> Self {
        // Named as a test database is, so that the sweep drops an account a killed test left behind.
        let name = crate::new_name(std::time::SystemTime::now());
        let statements = match test.backend {
            Backend::Postgres => vec![
                format!("CREATE ROLE {name} LOGIN CONNECTION LIMIT {limit}"),
                format!("GRANT CREATE, USAGE ON SCHEMA public TO {name}"),
            ],
            Backend::MySql => {
                let database = test.url.rsplit('/').next().expect("a database name").to_owned();
                vec![
                    format!("CREATE USER '{name}'@'%' WITH MAX_USER_CONNECTIONS {limit}"),
                    format!("GRANT ALL ON `{database}`.* TO '{name}'@'%'"),
                ]
            }
            Backend::Sqlite => panic!("SQLite has no accounts"),
        };
        execute(test.backend, &test.url, &statements).await;
        let url = with_user(&test.url, &name);
        Self { url, name, backend: test.backend, admin_url: test.url.clone() }
    }
}

impl Drop for LimitedAccount {
    fn drop(&mut self) {
        let statements = match self.backend {
            Backend::Postgres => {
                vec![format!("DROP OWNED BY {}", self.name), format!("DROP ROLE IF EXISTS {}", self.name)]
            }
            _ => vec![format!("DROP USER IF EXISTS '{}'@'%'", self.name)],
        };
        let (backend, url) = (self.backend, self.admin_url.clone());
        // Drop runs outside async code: a runtime of its own, in a thread of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(execute(backend, &url, &statements));
        });
        if cleanup.join().is_err() {
            eprintln!("dropping the test account {} failed; see above", self.name);
        }
    }
}

async fn execute(backend: Backend, url: &str, statements: &[String]) {
    for sql in statements {
        let sql = sqlx::raw_sql(AssertSqlSafe(sql.clone()));
        match backend {
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(url).await.expect("the test server");
                conn.execute(sql).await.unwrap_or_else(|e| panic!("{e}"));
            }
            _ => {
                let mut conn = sqlx::MySqlConnection::connect(url).await.expect("the test server");
                conn.execute(sql).await.unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
}

/// `scheme://user@host/db` with another user (and no password).
fn with_user(url: &str, user: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let host = url[start..].find('@').map_or(start, |i| start + i + 1);
    format!("{}{user}@{}", &url[..start], &url[host..])
}
