//! Graph's JSON batching: up to 20 requests in one, each evaluated against throttling on its own.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::{finish_with_faults, respond};
use crate::Service;
use crate::reply::{Reply, RequestIds};
use crate::stats::{Api, bump};

const GRAPH_BATCH_LIMIT: usize = 20;

fn batch_requests(body: &[u8], limit: usize, ids: &RequestIds) -> Result<Vec<Value>, Reply> {
    let parsed: Value = serde_json::from_slice(body).map_err(|_| {
        Reply::graph_error(StatusCode::BAD_REQUEST, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.", ids)
    })?;
    let Some(requests) = parsed["requests"].as_array() else {
        return Err(Reply::graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The batch request must contain a 'requests' array.",
            ids,
        ));
    };
    if requests.len() > limit {
        let text = format!("Number of batch request steps exceeds the maximum of {limit}.");
        return Err(Reply::graph_error(StatusCode::BAD_REQUEST, "BadRequest", &text, ids));
    }
    if requests.is_empty() {
        return Err(Reply::graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The batch request contains no requests.",
            ids,
        ));
    }
    Ok(requests.clone())
}

/// One item of a `$batch` answer: `id`, `status`, `headers` (with the item's `Content-Type`, as
/// the JSON batching page's response example shows) and `body`.
fn item_response(id: &Value, reply: Reply) -> Value {
    let mut headers: serde_json::Map<String, Value> =
        reply.headers.iter().map(|(k, v)| (k.to_string(), Value::from(v.clone()))).collect();
    if reply.body.is_some() {
        headers.insert("Content-Type".into(), "application/json; odata.metadata=minimal".into());
    }
    let mut response = json!({"id": id, "status": reply.status.as_u16(), "headers": headers});
    if let Some(body) = reply.body {
        response["body"] = body;
    }
    response
}

pub(super) async fn graph_batch(service: &Arc<Service>, beta: bool, body: &[u8], ids: &RequestIds) -> Response {
    let requests = match batch_requests(body, GRAPH_BATCH_LIMIT, ids) {
        Ok(requests) => requests,
        Err(reply) => return respond(service, Api::Graph, reply, ids),
    };
    let version = if beta { "/beta" } else { "/v1.0" };
    let writes = requests.iter().any(|r| {
        let method = r["method"].as_str().and_then(|m| m.to_uppercase().parse::<Method>().ok());
        method.is_some_and(|m| crate::graph::is_write(&m, r["url"].as_str().unwrap_or_default()))
    });
    let work_service = service.clone();
    finish_with_faults(service, Api::Graph, ids, writes, move || {
        let service = work_service;
        let responses: Vec<Value> = requests
            .iter()
            .map(|item| {
                let item_ids = RequestIds::new(item["headers"]["client-request-id"].as_str());
                let method = item["method"]
                    .as_str()
                    .and_then(|m| m.to_uppercase().parse::<Method>().ok())
                    .unwrap_or(Method::GET);
                let url = item["url"].as_str().unwrap_or_default();
                let url = if url.starts_with('/') { url.to_string() } else { format!("/{url}") };
                let body = if item["body"].is_null() { Vec::new() } else { item["body"].to_string().into_bytes() };
                service.record(method.as_str(), &format!("{version}{url}"), &body);
                let reply = service.graph_call(method, beta, &url, &body, &item_ids);
                service.stats.answered(Api::Graph, reply.status.as_u16());
                bump(&service.stats.batch_items);
                item_response(&item["id"], reply)
            })
            .collect();
        // "Requests in a batch are evaluated individually against throttling limits ... The batch
        // itself fails with a status code of 424 (Failed Dependency)" ("Throttling and batching",
        // learn.microsoft.com/graph/throttling): the body still carries every item's answer.
        let throttled = responses.iter().any(|r| r["status"] == 429);
        let status = if throttled { StatusCode::FAILED_DEPENDENCY } else { StatusCode::OK };
        Reply::json(status, json!({"responses": responses}))
    })
    .await
}
