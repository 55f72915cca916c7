//! [`Ledger`]: the operations a run acknowledged and those left in doubt, the other half (with the
//! database's state) of every invariant's proof. Refused and failed operations are counted, not kept:
//! they are known not applied.

/// The operations acknowledged and in doubt, in no particular order.
#[derive(Debug, Clone)]
pub struct Ledger<Op> {
    pub acknowledged: Vec<Op>,
    pub in_doubt: Vec<Op>,
}

impl<Op> Default for Ledger<Op> {
    fn default() -> Self {
        Self { acknowledged: Vec::new(), in_doubt: Vec::new() }
    }
}

impl<Op> Ledger<Op> {
    pub(crate) fn merge(&mut self, other: Ledger<Op>) {
        self.acknowledged.extend(other.acknowledged);
        self.in_doubt.extend(other.in_doubt);
    }
}
