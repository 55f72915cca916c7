//! The counter's and the stock's strategies on a table of the user's own (`racelab_core::table`),
//! against real PostgreSQL, MariaDB and SQLite: names that are reserved words work, 8 writers at once
//! lose nothing and sell nothing twice, and misuse is a clear error. The proof is the row, read back.

use std::collections::BTreeSet;

use racelab_core::table::{Take, UserTable};
use racelab_core::workload::StockStrategy;
use racelab_core::workload::WorkloadStrategy;
use racelab_core::{Backend, ErrorKind, LockMode, Strategy};
use racelab_testkit::{TestDb, on_every_backend};
use sqlx::{AssertSqlSafe, Connection, Executor};

/// Runs `sql` (several statements) on the test's database, outside racelab.
async fn execute(test: &TestDb, sql: &str) {
    let sql = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()));
    match test.backend {
        Backend::Postgres => sqlx::PgConnection::connect(&test.url).await.unwrap().execute(sql).await.map(drop),
        Backend::MySql => sqlx::MySqlConnection::connect(&test.url).await.unwrap().execute(sql).await.map(drop),
        Backend::Sqlite => sqlx::SqliteConnection::connect(&test.url).await.unwrap().execute(sql).await.map(drop),
    }
    .unwrap_or_else(|e| panic!("{e}"));
}

/// A table named `order` whose value column is `like`: both reserved words, quoted per dialect.
async fn orders_table(test: &TestDb, rows: usize) -> UserTable {
    let q = if test.backend == Backend::MySql { '`' } else { '"' };
    let values = (1..=rows).map(|id| format!("({id}, 0)")).collect::<Vec<_>>().join(", ");
    execute(
        test,
        &format!(
            "CREATE TABLE {q}order{q} (id BIGINT PRIMARY KEY, {q}like{q} INTEGER NOT NULL); \
             INSERT INTO {q}order{q} (id, {q}like{q}) VALUES {values}"
        ),
    )
    .await;
    UserTable::new(test.backend, "order", "id", "like").unwrap()
}

const WRITERS: usize = 8;
const EACH: i64 = 10;

// Eight writers add 1 ten times each to one row, all at once, per safe strategy: the row ends at 80,
// and the values the adds handed back are 1..=80, each once (no two adds saw the same value).
async fn safe_counter_strategies_lose_nothing_on_your_table(test: TestDb) {
    let db = test.connect().await;
    let safe = [Strategy::Atomic, Strategy::Pessimistic(LockMode::Wait), Strategy::Optimistic, Strategy::Serializable];
    let table = orders_table(&test, safe.len()).await;
    for (row, strategy) in (1..).zip(safe) {
        let counter = table.counter(strategy).unwrap();
        let writers: Vec<_> = (0..WRITERS)
            .map(|_| {
                let (counter, db) = (counter.clone(), db.clone());
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    for _ in 0..EACH {
                        seen.push(counter.add(&db, row, 1).await.result.unwrap_or_else(|e| panic!("{strategy}: {e}")));
                    }
                    seen
                })
            })
            .collect();
        let mut seen = BTreeSet::new();
        for writer in writers {
            for value in writer.await.unwrap() {
                assert!(seen.insert(value), "{strategy}: two adds handed back {value}");
            }
        }
        let total = WRITERS as i64 * EACH;
        assert_eq!(seen, (1..=total).collect(), "{strategy}");
        assert_eq!(table.value(&db, row).await.unwrap(), total, "{strategy}: the row, read back");
    }
}
on_every_backend!(safe_counter_strategies_lose_nothing_on_your_table);

// A stock of 20 in a text-keyed row with a CHECK, eight takers taking one unit five times each, per
// safe strategy: exactly 20 taken, 20 refused, and the row at 0, never below.
async fn safe_stock_strategies_never_sell_twice_on_your_table(test: TestDb) {
    let db = test.connect().await;
    execute(
        &test,
        "CREATE TABLE inventory (sku VARCHAR(32) PRIMARY KEY, on_hand INTEGER NOT NULL CHECK (on_hand >= 0))",
    )
    .await;
    let inventory = UserTable::new(test.backend, "inventory", "sku", "on_hand").unwrap();
    let safe = StockStrategy::ALL.iter().filter(|s| **s != StockStrategy::Naive);
    for strategy in safe.copied() {
        let sku = format!("sku-{}", strategy.name());
        execute(&test, &format!("INSERT INTO inventory (sku, on_hand) VALUES ('{sku}', 20)")).await;
        let stock = inventory.stock(strategy);
        let takers: Vec<_> = (0..WRITERS)
            .map(|_| {
                let (stock, db, sku) = (stock.clone(), db.clone(), sku.clone());
                tokio::spawn(async move {
                    let mut answers = Vec::new();
                    for _ in 0..5 {
                        answers.push(
                            stock
                                .take(&db, sku.as_str(), 1)
                                .await
                                .result
                                .unwrap_or_else(|e| panic!("{strategy:?}: {e}")),
                        );
                    }
                    answers
                })
            })
            .collect();
        let mut answers: Vec<Take> = Vec::new();
        for taker in takers {
            answers.extend(taker.await.unwrap());
        }
        let taken = answers.iter().filter(|a| **a == Take::Taken).count();
        assert_eq!((taken, answers.len() - taken), (20, 20), "{strategy:?}: taken, refused");
        assert_eq!(inventory.value(&db, sku.as_str()).await.unwrap(), 0, "{strategy:?}: the row, read back");
    }
}
on_every_backend!(safe_stock_strategies_never_sell_twice_on_your_table);

// A take of more than is there is refused, leaving the row as it was, and `naive` (one taker, so no
// race) takes what is there: its path works; what it loses under a race, `racelab lab` shows.
async fn a_take_of_more_than_is_there_is_refused_by_every_strategy(test: TestDb) {
    let db = test.connect().await;
    execute(&test, "CREATE TABLE shop_stock (item BIGINT PRIMARY KEY, qty BIGINT NOT NULL CHECK (qty >= 0))").await;
    let stock = UserTable::new(test.backend, "shop_stock", "item", "qty").unwrap();
    for (item, strategy) in (1..).zip(StockStrategy::ALL.iter().copied()) {
        execute(&test, &format!("INSERT INTO shop_stock (item, qty) VALUES ({item}, 3)")).await;
        let take = stock.stock(strategy);
        assert_eq!(take.take(&db, item, 4).await.result.unwrap(), Take::Refused, "{strategy:?}");
        assert_eq!(take.take(&db, item, 2).await.result.unwrap(), Take::Taken, "{strategy:?}");
        assert_eq!(stock.value(&db, item).await.unwrap(), 1, "{strategy:?}");
    }
}
on_every_backend!(a_take_of_more_than_is_there_is_refused_by_every_strategy);

// A key with no row, a table named for another database, a strategy that needs racelab's own
// schema and a take of nothing are each a clear error; nothing is written.
async fn misuse_is_a_clear_error(test: TestDb) {
    let db = test.connect().await;
    let table = orders_table(&test, 1).await;
    for strategy in [Strategy::Naive, Strategy::Atomic, Strategy::Optimistic, Strategy::Pessimistic(LockMode::Wait)] {
        let err = table.counter(strategy).unwrap().add(&db, 99, 1).await.result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{strategy}: {err}");
        assert!(err.to_string().contains("has no row with key 99"), "{strategy}: {err}");
    }
    for strategy in StockStrategy::ALL.iter().copied() {
        let err = table.stock(strategy).take(&db, 99, 1).await.result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{strategy:?}: {err}");
    }
    let err = table.stock(StockStrategy::Conditional).take(&db, 1, 0).await.result.unwrap_err();
    assert!(err.to_string().contains("a take must be of 1 or more, got 0"), "{err}");

    let other = if test.backend == Backend::MySql { Backend::Postgres } else { Backend::MySql };
    let elsewhere = UserTable::new(other, "order", "id", "like").unwrap();
    let err = elsewhere.counter(Strategy::Atomic).unwrap().add(&db, 1, 1).await.result.unwrap_err();
    assert!(err.to_string().contains(&format!("was named for {other}, not {}", test.backend)), "{err}");

    let err = table.counter(Strategy::Sharded { slots: 4 }).unwrap_err();
    assert_eq!(err.to_string(), "the sharded strategy cannot run on your table: it needs racelab's slot table");
    assert!(UserTable::new(test.backend, "order; --", "id", "like").is_err());
    assert_eq!(table.value(&db, 1).await.unwrap(), 0, "nothing was written");
    let one = table.counter(Strategy::Naive).unwrap().add(&db, 1, 5).await;
    assert_eq!((one.result.unwrap(), one.attempts), (5, 1), "naive, alone, adds");
}
on_every_backend!(misuse_is_a_clear_error);
