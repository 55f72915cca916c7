//! SQL that tests install in their own database to change what a run sees, written once for every
//! test binary that needs it.

use racelab_core::Backend;

/// A trigger on `stock_items` that takes one more unit each time a sale takes one: a writer beside the
/// run's, deterministic (no timing), whose units leave the stock with no sale, so that even a safe
/// strategy's no-oversell invariant breaks. The tables must exist (migrated) before it is installed.
pub fn take_one_more_unit_trigger(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => {
            "CREATE FUNCTION take_one_more() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN NEW.qty := NEW.qty - 1; RETURN NEW; END $$; \
             CREATE TRIGGER take_one_more BEFORE UPDATE ON stock_items FOR EACH ROW \
             WHEN (NEW.qty < OLD.qty) EXECUTE FUNCTION take_one_more();"
        }
        Backend::MySql => {
            "CREATE TRIGGER take_one_more BEFORE UPDATE ON stock_items FOR EACH ROW \
             SET NEW.qty = IF(NEW.qty < OLD.qty, NEW.qty - 1, NEW.qty)"
        }
        // SQLite cannot change NEW; its triggers are not recursive unless asked, so the trigger's own
        // update does not fire it again.
        Backend::Sqlite => {
            "CREATE TRIGGER take_one_more AFTER UPDATE OF qty ON stock_items WHEN NEW.qty < OLD.qty \
             BEGIN UPDATE stock_items SET qty = qty - 1 WHERE id = NEW.id; END"
        }
    }
}
