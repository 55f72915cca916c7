//! Reading InnoDB's monitor (`SHOW ENGINE INNODB STATUS`) for a connection's lock wait, live: what
//! `racelab anomalies` and `racelab spec` both ask on MariaDB/MySQL. The monitor, not
//! `information_schema.innodb_lock_waits`, whose cache a poller keeps frozen.

/// Whether the InnoDB monitor's list of transactions shows the one of connection `id` in a lock
/// wait: its block (from `---TRANSACTION` to the next) has a line starting `LOCK WAIT` and names the
/// connection as `MariaDB thread id <id>,` (`MySQL thread id` on MySQL).
pub(crate) fn innodb_status_shows_lock_wait(status: &str, id: i64) -> bool {
    let names_it = |line: &str| {
        ["MariaDB thread id ", "MySQL thread id "]
            .iter()
            .any(|prefix| line.strip_prefix(prefix).and_then(|rest| rest.split(',').next()) == Some(&id.to_string()))
    };
    status.split("---TRANSACTION").skip(1).any(|block| {
        let lines = || block.lines().map(str::trim_start);
        lines().any(|l| l.starts_with("LOCK WAIT")) && lines().any(names_it)
    })
}

#[cfg(test)]
mod tests {
    use super::innodb_status_shows_lock_wait;

    /// The part of MariaDB 10.11's monitor that matters: thread 25739 waits, 25645 holds the lock.
    const STATUS: &str = "\
LIST OF TRANSACTIONS FOR EACH SESSION:
---TRANSACTION 181248, ACTIVE 0 sec starting index read
mysql tables in use 1, locked 1
LOCK WAIT 2 lock struct(s), heap size 1128, 1 row lock(s)
MariaDB thread id 25739, OS thread handle 131682696644288, query id 1279634 127.0.0.1 root Updating
update lw set v=3 where id=1
------- TRX HAS BEEN WAITING 512170 us FOR THIS LOCK TO BE GRANTED:
RECORD LOCKS space id 616 page no 3 n bits 320 index PRIMARY of table `a`.`lw` trx id 181248 lock_mode X waiting
------------------
---TRANSACTION 180936, ACTIVE 1 sec
2 lock struct(s), heap size 1128, 1 row lock(s), undo log entries 1
MariaDB thread id 25645, OS thread handle 140478919362240, query id 1278603 127.0.0.1 root User sleep
select sleep(3)
---TRANSACTION (0x7fc3d84b8e80), not started
0 lock struct(s), heap size 1128, 0 row lock(s)
--------
FILE I/O
";

    #[test]
    fn the_waiting_thread_is_seen_and_no_other() {
        assert!(innodb_status_shows_lock_wait(STATUS, 25739));
        assert!(!innodb_status_shows_lock_wait(STATUS, 25645), "holds the lock, does not wait");
        assert!(!innodb_status_shows_lock_wait(STATUS, 2573), "a prefix of a waiting thread's id");
        assert!(!innodb_status_shows_lock_wait(STATUS, 1), "not in the list");
    }
}
