//! Product and SKU states, and the product lifecycle `draft → active ⇄ inactive → archived`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductStatus {
    Draft,
    Active,
    Inactive,
    Archived,
}

impl ProductStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Archived => "archived",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "draft" => Self::Draft,
            "active" => Self::Active,
            "inactive" => Self::Inactive,
            "archived" => Self::Archived,
            _ => return None,
        })
    }

    /// Whether a product may go from `self` to `to`. Staying put is allowed (an idempotent PATCH).
    /// A draft may be published or discarded; a live product may be paused and resumed; archived
    /// is final (the product stays for order history, but is never sold again).
    pub fn can_become(self, to: Self) -> bool {
        use ProductStatus::*;
        self == to
            || matches!(
                (self, to),
                (Draft, Active)
                    | (Draft, Archived)
                    | (Active, Inactive)
                    | (Inactive, Active)
                    | (Active, Archived)
                    | (Inactive, Archived)
            )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SkuStatus {
    Active,
    Inactive,
}

impl SkuStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ProductStatus::*;
    use super::*;

    const ALL: [ProductStatus; 4] = [Draft, Active, Inactive, Archived];

    #[test]
    fn archived_is_final_and_nothing_returns_to_draft() {
        for s in ALL {
            assert_eq!(Archived.can_become(s), s == Archived, "archived → {s:?}");
            assert_eq!(s.can_become(Draft), s == Draft, "{s:?} → draft");
        }
    }

    #[test]
    fn active_and_inactive_toggle_and_a_draft_is_published() {
        assert!(Active.can_become(Inactive));
        assert!(Inactive.can_become(Active));
        assert!(Draft.can_become(Active));
        assert!(!Draft.can_become(Inactive));
    }

    #[test]
    fn status_names_round_trip() {
        for s in ALL {
            assert_eq!(ProductStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(ProductStatus::parse("deleted"), None);
    }
}
