//! Server-driven paging as Graph does it ("Paging Microsoft Graph data in your app"): a page of
//! `$top` items (or the route's default), and an `@odata.nextLink` that carries the same query
//! with a `$skiptoken` for as long as items remain. Clients must follow the link as it is.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::GraphCall;
use crate::reply::Reply;

/// One listing: where its next link points and how big a page is when `$top` does not say.
pub(super) struct Listing<'a> {
    pub call: &'a GraphCall,
    pub base: &'a str,
    /// The path after the version, e.g. `groups/{id}/members`.
    pub path: String,
    pub context: String,
    pub default_page: usize,
}

impl Listing<'_> {
    /// The page of `items` this call asks for, each rendered by `render`.
    pub(super) fn reply<T>(&self, items: &[T], render: impl Fn(&T) -> Value) -> Reply {
        let page = self.call.top.unwrap_or(self.default_page);
        let values: Vec<Value> = items.iter().skip(self.call.skip).take(page).map(render).collect();
        let mut body = json!({"@odata.context": self.context, "value": values});
        if self.call.skip + page < items.len() {
            body["@odata.nextLink"] = self.next_link(self.call.skip + page).into();
        }
        Reply::json(StatusCode::OK, body)
    }

    fn next_link(&self, skip: usize) -> String {
        let call = self.call;
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(filter) = &call.filter {
            query.append_pair("$filter", filter);
        }
        if let Some(fields) = &call.select {
            query.append_pair("$select", &fields.join(","));
        }
        if let Some(expand) = &call.expand {
            query.append_pair("$expand", expand);
        }
        if let Some(top) = call.top {
            query.append_pair("$top", &top.to_string());
        }
        query.append_pair("$skiptoken", &skip.to_string());
        let version = if call.beta { "beta" } else { "v1.0" };
        format!("{}/{version}/{}?{}", self.base, self.path, query.finish())
    }
}

/// `$select` on a directory object: the listed properties, and always its `@odata.type` (which
/// tells a user from a group in a collection of directory objects).
pub(super) fn select_typed(mut object: Value, fields: Option<&[String]>) -> Value {
    if let (Some(fields), Value::Object(map)) = (fields, &mut object) {
        map.retain(|key, _| key == "@odata.type" || fields.iter().any(|f| f.eq_ignore_ascii_case(key)));
    }
    object
}
