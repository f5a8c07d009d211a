//! `GET identity/conditionalAccess/policies` and `…/namedLocations` (Policy.Read.All): the
//! tenant's v1.0 objects as they are, paged with `@odata.nextLink`.

use axum::http::StatusCode;
use serde_json::Value;

use super::paging::{Listing, select_typed};
use super::{GraphCall, Route, context_url, select};
use crate::Service;
use crate::reply::{Reply, RequestIds};
use crate::tenant::Tenant;

/// Microsoft documents no page size for these lists; a small one makes a client follow
/// `@odata.nextLink` even on a tenant with a dozen policies, as it must on one with two hundred.
const PAGE: usize = 5;

pub(super) fn list(service: &Service, tenant: &Tenant, call: &GraphCall, ids: &RequestIds) -> Reply {
    if call.filter.is_some() {
        return Reply::graph_error(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "Invalid filter clause: the expression is not supported.",
            ids,
        );
    }
    let (path, items) = match call.route {
        Route::NamedLocations => {
            ("identity/conditionalAccess/namedLocations", &tenant.conditional_access.named_locations)
        }
        _ => ("identity/conditionalAccess/policies", &tenant.conditional_access.policies),
    };
    let listing = Listing {
        call,
        base: service.base_url(),
        path: path.to_string(),
        context: context_url(service, call, path),
        default_page: PAGE,
    };
    // A named location is one of several types, so each carries its @odata.type.
    let typed = call.route == Route::NamedLocations;
    listing.reply(items, |item: &Value| {
        if typed {
            select_typed(item.clone(), call.select.as_deref())
        } else {
            select(item.clone(), call.select.as_deref())
        }
    })
}
