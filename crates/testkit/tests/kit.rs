//! The kit's own promises, on the real servers: a test's database is gone however the test ends, the
//! sweep takes only old test databases that nobody uses, and an admin connection waits for a server
//! that is out of connections instead of failing with the wrong hint.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use racelab_core::Backend;
use racelab_testkit::{TestDb, admin_connect};
use sqlx::{AssertSqlSafe, Connection, Executor};

fn server_admin_url(backend: Backend) -> String {
    match backend {
        Backend::Postgres => std::env::var("RACELAB_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
        _ => std::env::var("RACELAB_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into()),
    }
}

async fn execute(backend: Backend, url: &str, sql: &str) {
    let sql = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()));
    match backend {
        Backend::Postgres => {
            sqlx::PgConnection::connect(url).await.unwrap().execute(sql).await.unwrap();
        }
        _ => {
            sqlx::MySqlConnection::connect(url).await.unwrap().execute(sql).await.unwrap();
        }
    }
}

/// Whether the test database `name` (a file stem on SQLite) still exists.
async fn exists(backend: Backend, name: &str) -> bool {
    let url = server_admin_url(backend);
    match backend {
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
                .bind(name)
                .fetch_one(&mut c)
                .await
                .unwrap();
            n > 0
        }
        Backend::MySql => {
            let mut c = sqlx::MySqlConnection::connect(&url).await.unwrap();
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?")
                .bind(name)
                .fetch_one(&mut c)
                .await
                .unwrap();
            n > 0
        }
        Backend::Sqlite => std::env::temp_dir().join(format!("{name}.db")).exists(),
    }
}

// A test body that panics, with its database in use (a pool open on it): the database is dropped all
// the same, on every backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_that_panics_leaves_no_database_behind() {
    for backend in Backend::ALL {
        let name = Arc::new(Mutex::new(String::new()));
        let seen = name.clone();
        let test = tokio::spawn(racelab_testkit::run(backend, move |test: TestDb| async move {
            *seen.lock().unwrap() = test.name().to_owned();
            let db = test.connect().await;
            db.create_post().await.expect("a post");
            panic!("this test fails on purpose, holding its database");
        }));
        assert!(test.await.expect_err("the body panicked").is_panic());
        let name = name.lock().unwrap().clone();
        assert!(name.starts_with("racelab_t_"), "{name}");
        assert!(!exists(backend, &name).await, "{backend}: {name} is still there after the test panicked");
    }
}

// What a killed test leaves (a database made an hour ago) is swept; a fresh test database, an old one
// somebody is connected to, and another application's database are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_takes_only_old_test_databases_nobody_uses() {
    let hour_ago = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() - 3600;
    let random = || uuid::Uuid::new_v4().simple().to_string()[..20].to_owned();
    for backend in [Backend::Postgres, Backend::MySql] {
        let admin = server_admin_url(backend);
        let (leftover, busy, theirs) = (
            format!("racelab_t_{hour_ago}_{}", random()),
            format!("racelab_t_{hour_ago}_{}", random()),
            format!("racelab_x_{}", random()),
        );
        for name in [&leftover, &busy, &theirs] {
            execute(backend, &admin, &format!("CREATE DATABASE {name}")).await;
        }
        // Accounts a killed test left (a limited account is named as a test database is): one nobody
        // uses, one somebody is connected as.
        let (leftover_account, busy_account) =
            (format!("racelab_t_{hour_ago}_{}", random()), format!("racelab_t_{hour_ago}_{}", random()));
        let (account, create_account, drop_account) = match backend {
            Backend::Postgres => ("role", "CREATE ROLE {} LOGIN", "DROP ROLE IF EXISTS {}"),
            _ => ("user", "CREATE USER '{}'@'%'", "DROP USER IF EXISTS '{}'@'%'"),
        };
        for name in [&leftover_account, &busy_account] {
            execute(backend, &admin, &create_account.replace("{}", name)).await;
        }
        // MariaDB lets an account without grants in, but into no database.
        let busy_account_url = match as_user(&admin, &busy_account) {
            url if backend == Backend::MySql => url.rsplit_once('/').map(|(server, _db)| server.to_owned()).unwrap(),
            url => url,
        };
        let account_holder: Box<dyn std::any::Any> = match backend {
            Backend::Postgres => Box::new(sqlx::PgConnection::connect(&busy_account_url).await.unwrap()),
            _ => Box::new(sqlx::MySqlConnection::connect(&busy_account_url).await.unwrap()),
        };
        let fresh = TestDb::create(backend).await;
        let busy_url = fresh.url.replace(fresh.name(), &busy);
        let holder: Box<dyn std::any::Any> = match backend {
            Backend::Postgres => Box::new(sqlx::PgConnection::connect(&busy_url).await.unwrap()),
            _ => Box::new(sqlx::MySqlConnection::connect(&busy_url).await.unwrap()),
        };

        let report = racelab_testkit::sweep(SystemTime::now() - Duration::from_secs(600)).await;

        assert!(report.dropped.contains(&format!("{backend} {leftover}")), "{report:?}");
        assert!(report.in_use.contains(&format!("{backend} {busy}")), "{report:?}");
        assert!(!exists(backend, &leftover).await);
        for kept in [&busy, &theirs, &fresh.name().to_owned()] {
            assert!(exists(backend, kept).await, "{backend}: {kept} was swept: {report:?}");
        }
        assert!(report.dropped.contains(&format!("{backend} {account} {leftover_account}")), "{report:?}");
        assert!(report.in_use.contains(&format!("{backend} {account} {busy_account}")), "{report:?}");
        drop(holder);
        drop(account_holder);
        for name in [&busy, &theirs] {
            execute(backend, &admin, &format!("DROP DATABASE IF EXISTS {name}")).await;
        }
        execute(backend, &admin, &drop_account.replace("{}", &busy_account)).await;
    }
    // A SQLite file of an hour ago, with its WAL.
    let stem = format!("racelab_t_{hour_ago}_{}", random());
    let files = [format!("{stem}.db"), format!("{stem}.db-wal")].map(|f| std::env::temp_dir().join(f));
    for file in &files {
        std::fs::write(file, b"").unwrap();
    }
    let fresh = TestDb::create(Backend::Sqlite).await;
    let fresh_file = std::env::temp_dir().join(format!("{}.db", fresh.name()));
    std::fs::write(&fresh_file, b"").unwrap();
    racelab_testkit::sweep(SystemTime::now() - Duration::from_secs(600)).await;
    assert!(files.iter().all(|f| !f.exists()), "{files:?}");
    assert!(fresh_file.exists());
}

/// Runs `sql` on `url` when dropped, also when the test panics: the limited user must not outlive a
/// failed test (a PostgreSQL role belongs to the whole server, not to the test's database).
struct Cleanup {
    backend: Backend,
    url: String,
    sql: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (backend, url, sql) = (self.backend, self.url.clone(), self.sql.clone());
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(execute(backend, &url, &sql));
        });
        if done.join().is_err() {
            eprintln!("`{}` failed; see above", self.sql);
        }
    }
}

/// `url` as user `user` (no password).
fn as_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}@{host}")
}

// A server with no connection left for the kit (here a user limited to one, which the test holds):
// the admin connection waits, and has one as soon as the test lets go; it does not fail at once with
// "start it", which is wrong for a server that answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_connection_waits_for_a_server_out_of_connections() {
    for backend in [Backend::Postgres, Backend::MySql] {
        let test = TestDb::create(backend).await;
        let user = format!("racelab_lim_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let (create, grant, drop_user) = match backend {
            Backend::Postgres => (
                format!("CREATE ROLE {user} LOGIN CONNECTION LIMIT 1"),
                // PUBLIC may connect to any database: nothing to grant.
                "SELECT 1".to_owned(),
                format!("DROP ROLE IF EXISTS {user}"),
            ),
            _ => (
                format!("CREATE USER '{user}'@'%' WITH MAX_USER_CONNECTIONS 1"),
                format!("GRANT ALL ON `{}`.* TO '{user}'@'%'", test.name()),
                format!("DROP USER IF EXISTS '{user}'@'%'"),
            ),
        };
        execute(backend, &test.url, &create).await;
        let _drop_user = Cleanup { backend, url: test.url.clone(), sql: drop_user };
        execute(backend, &test.url, &grant).await;
        let url = as_user(&test.url, &user);

        // The test holds the user's one connection.
        let holder: Box<dyn std::any::Any + Send> = match backend {
            Backend::Postgres => Box::new(sqlx::PgConnection::connect(&url).await.unwrap()),
            _ => Box::new(sqlx::MySqlConnection::connect(&url).await.unwrap()),
        };
        let waiter = {
            let url = url.clone();
            tokio::spawn(async move {
                match backend {
                    Backend::Postgres => {
                        let _c: sqlx::PgConnection = admin_connect(backend, &url, "RACELAB_TEST_POSTGRES_URL").await;
                    }
                    _ => {
                        let _c: sqlx::MySqlConnection = admin_connect(backend, &url, "RACELAB_TEST_MYSQL_URL").await;
                    }
                }
            })
        };
        // It is refused meanwhile (and waits): not finished, not panicked.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!waiter.is_finished(), "{backend}: the admin connection did not wait for a free slot");
        drop(holder);
        tokio::time::timeout(Duration::from_secs(30), waiter)
            .await
            .expect("the admin connection got the freed slot within 30 s")
            .expect("the admin connection, once a slot was free");
    }
}

// Under nextest, a test outside the `many-connections` group cannot have a pool that would break the
// suite's connection budget; it is told where to add itself.
#[test]
fn a_wide_pool_outside_its_group_is_refused() {
    if std::env::var_os("NEXTEST").is_none() {
        return;
    }
    println!("NEXTEST_TEST_GROUP={:?}", std::env::var("NEXTEST_TEST_GROUP"));
    let refused = std::panic::catch_unwind(|| racelab_testkit::pool_size(true)).expect_err("refused");
    let message = refused.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("add it to the `many-connections` group in .config/nextest.toml"), "{message}");
    assert_eq!(racelab_testkit::pool_size(false), racelab_testkit::CONNECTIONS_PER_TEST);
}
