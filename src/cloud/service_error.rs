//! What went wrong, in the service's own words: Graph's and the Exchange admin API's error bodies,
//! and the identity platform's AADSTS bodies.

use serde_json::Value;

/// The code and the most useful message an error body carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceMessage {
    pub code: String,
    pub message: String,
}

/// Reads a Graph or Exchange error body. Exchange's useful text is usually in
/// `details[0].message`, behind a `Ex…|Type|` prefix; Graph's is `error.message`.
pub fn parse(body: &[u8]) -> ServiceMessage {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(&body[..body.len().min(300)]).trim().to_string();
        return ServiceMessage { code: String::new(), message: text };
    };
    let error = &value["error"];
    if let Some(text) = error.as_str() {
        // The identity platform: {"error":"invalid_client","error_description":"AADSTS…"}.
        let description = value["error_description"].as_str().unwrap_or_default();
        let description = description.split(" Trace ID:").next().unwrap_or(description);
        return ServiceMessage { code: text.to_string(), message: description.trim().to_string() };
    }
    let code = error["code"].as_str().unwrap_or_default().to_string();
    let detail = error["details"][0]["message"].as_str().filter(|m| !m.is_empty());
    let message = match detail {
        Some(detail) => detail.rsplit('|').next().unwrap_or(detail),
        None => error["message"].as_str().unwrap_or_default(),
    };
    ServiceMessage { code, message: message.trim().to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn graph_exchange_and_identity_bodies() {
        let graph = br#"{"error":{"code":"Request_ResourceNotFound","message":"Resource 'x' does not exist"}}"#;
        assert_eq!(
            parse(graph),
            ServiceMessage { code: "Request_ResourceNotFound".into(), message: "Resource 'x' does not exist".into() }
        );
        let exchange = br#"{"error":{"code":"NotFound","message":"Error executing cmdlet","details":[{"code":"Context","target":"","message":"Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|The operation couldn't be performed because object 'x' couldn't be found."}]}}"#;
        assert_eq!(
            parse(exchange).message,
            "The operation couldn't be performed because object 'x' couldn't be found."
        );
        let aad = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Trace ID: 1 Correlation ID: 2"}"#;
        assert_eq!(
            parse(aad),
            ServiceMessage {
                code: "invalid_client".into(),
                message: "AADSTS7000215: Invalid client secret provided.".into()
            }
        );
        assert_eq!(parse(b"<html>gateway</html>").message, "<html>gateway</html>");
    }

    proptest! {
        #[test]
        fn any_body_parses_without_panicking(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&body);
        }

        #[test]
        fn any_json_error_parses_without_panicking(code in ".*", message in ".*", detail in ".*") {
            let body = serde_json::json!({"error": {"code": code, "message": message, "details": [{"message": detail}]}});
            let _ = parse(body.to_string().as_bytes());
        }
    }
}
