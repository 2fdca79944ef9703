//! The order's two state machines (contract §6): the order status, and the payment status that
//! mirrors what the payment service reports. Each transition names the states it may leave, and the
//! repository applies it as one conditional `UPDATE … WHERE status = ANY(from)`, so of two writers
//! racing for one order (a buyer's cancel and an incoming event, two sweepers) exactly one wins.

use serde::{Deserialize, Serialize};
use shared::events::CancelReason;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    AwaitingPayment,
    Confirmed,
    Shipped,
    Delivered,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Pending,
        Status::AwaitingPayment,
        Status::Confirmed,
        Status::Shipped,
        Status::Delivered,
        Status::Cancelled,
    ];

    /// States an order may be cancelled from (anything before it ships).
    pub const CANCELLABLE: [Status; 3] =
        [Status::Pending, Status::AwaitingPayment, Status::Confirmed];

    /// States in which the order still waits for its payment (the deadline runs).
    pub const UNPAID: [Status; 2] = [Status::Pending, Status::AwaitingPayment];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::AwaitingPayment => "awaiting_payment",
            Status::Confirmed => "confirmed",
            Status::Shipped => "shipped",
            Status::Delivered => "delivered",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn strs(states: &[Status]) -> Vec<&'static str> {
        states.iter().map(|s| s.as_str()).collect()
    }
}

impl TryFrom<String> for Status {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s).ok_or_else(|| format!("unknown order status '{s}'"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    None,
    Authorized,
    Captured,
    Voided,
    Refunded,
    Failed,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 6] = [
        PaymentStatus::None,
        PaymentStatus::Authorized,
        PaymentStatus::Captured,
        PaymentStatus::Voided,
        PaymentStatus::Refunded,
        PaymentStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::None => "none",
            PaymentStatus::Authorized => "authorized",
            PaymentStatus::Captured => "captured",
            PaymentStatus::Voided => "voided",
            PaymentStatus::Refunded => "refunded",
            PaymentStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The payment statuses this one may be reached from: the payment service's own machine
    /// (`requested → authorized → captured → refunded`, `authorized → voided`, `failed`).
    pub fn reachable_from(self) -> &'static [PaymentStatus] {
        match self {
            PaymentStatus::None => &[],
            PaymentStatus::Authorized | PaymentStatus::Failed => &[PaymentStatus::None],
            PaymentStatus::Captured | PaymentStatus::Voided => &[PaymentStatus::Authorized],
            PaymentStatus::Refunded => &[PaymentStatus::Captured],
        }
    }
}

impl TryFrom<String> for PaymentStatus {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s).ok_or_else(|| format!("unknown payment status '{s}'"))
    }
}

pub fn cancel_reason_str(reason: CancelReason) -> &'static str {
    match reason {
        CancelReason::BuyerRequested => "buyer_requested",
        CancelReason::PaymentTimeout => "payment_timeout",
        CancelReason::InventoryUnavailable => "inventory_unavailable",
        CancelReason::PaymentFailed => "payment_failed",
        CancelReason::CaptureFailed => "capture_failed",
        CancelReason::AdminCancelled => "admin_cancelled",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_names() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).unwrap_or_default(),
                serde_json::json!(s.as_str())
            );
        }
        for p in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(p.as_str()), Some(p));
        }
        assert_eq!(Status::parse("paid"), None);
    }

    #[test]
    fn cancel_reasons_are_named_as_on_the_wire() {
        for r in [
            CancelReason::BuyerRequested,
            CancelReason::PaymentTimeout,
            CancelReason::InventoryUnavailable,
            CancelReason::PaymentFailed,
            CancelReason::CaptureFailed,
            CancelReason::AdminCancelled,
        ] {
            assert_eq!(
                serde_json::to_value(r).unwrap_or_default(),
                serde_json::json!(cancel_reason_str(r))
            );
        }
    }

    #[test]
    fn a_payment_is_only_captured_or_voided_after_it_was_authorized() {
        assert_eq!(
            PaymentStatus::Captured.reachable_from(),
            &[PaymentStatus::Authorized]
        );
        assert_eq!(
            PaymentStatus::Refunded.reachable_from(),
            &[PaymentStatus::Captured]
        );
        assert!(PaymentStatus::None.reachable_from().is_empty());
    }
}
