//! What went wrong, in the service's own words: Graph's and the Exchange admin API's error bodies,
//! and the identity platform's AADSTS bodies.

use serde_json::Value;

/// The code and the most useful message an error body carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceMessage {
    pub code: String,
    pub message: String,
    /// The exception an Exchange cmdlet threw (`Microsoft.Exchange.…Exception`), when the body
    /// names one: what an Exchange error means, whatever the HTTP status.
    pub exception: Option<String>,
}

/// Reads a Graph or Exchange error body. Graph's text is `error.message`. Exchange's is in
/// `details[0].message`, in one of two forms public clients that run on real tenants handle
/// (ExoHelper's `Get-ExoException`, GreyCorbel/ExoHelper; CIPP's `New-ExoRequest`):
/// `Ex6F9304|Microsoft.Exchange.…ManagementObjectNotFoundException|The operation couldn't be
/// performed because object 'x' couldn't be found.`, or a JSON object with `Message` and
/// `TypeName`. A body that is not JSON at all (the Exchange throttling text, a gateway's HTML) is
/// its own message.
pub fn parse(body: &[u8]) -> ServiceMessage {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(&body[..body.len().min(300)]).trim().to_string();
        return ServiceMessage { message: text, ..ServiceMessage::default() };
    };
    let error = &value["error"];
    if let Some(text) = error.as_str() {
        // The identity platform: {"error":"invalid_client","error_description":"AADSTS…"}.
        let description = value["error_description"].as_str().unwrap_or_default();
        let description = description.split(" Trace ID:").next().unwrap_or(description);
        return ServiceMessage { code: text.to_string(), message: description.trim().to_string(), exception: None };
    }
    let code = error["code"].as_str().unwrap_or_default().to_string();
    let detail = error["details"][0]["message"].as_str().filter(|m| !m.trim().is_empty());
    let (message, exception) = match detail {
        Some(detail) => exchange_detail(detail),
        None => (error["message"].as_str().unwrap_or_default().to_string(), None),
    };
    ServiceMessage { code, message: message.trim().to_string(), exception }
}

/// An Exchange `details[0].message`: its text and the exception type it names.
fn exchange_detail(detail: &str) -> (String, Option<String>) {
    let trimmed = detail.trim();
    if trimmed.starts_with('{')
        && let Ok(inner) = serde_json::from_str::<Value>(trimmed)
    {
        let text = inner["Message"].as_str().or(inner["message"].as_str()).unwrap_or(trimmed).to_string();
        let kind = inner["TypeName"].as_str().or(inner["ExceptionType"].as_str()).map(str::to_string);
        return (text, kind);
    }
    let parts: Vec<&str> = trimmed.splitn(3, '|').collect();
    match parts.as_slice() {
        [_, kind, text] if kind.contains('.') || kind.ends_with("Exception") => {
            (text.to_string(), Some(kind.trim().to_string()))
        }
        _ => (trimmed.rsplit('|').next().unwrap_or(trimmed).to_string(), None),
    }
}

/// Whether an Exchange error says the object does not exist (no such mailbox), whatever status
/// it came with: real tenants answer 404, and public clients' fixtures show the same exception
/// under 500.
pub fn is_exchange_not_found(message: &ServiceMessage) -> bool {
    message.exception.as_deref().is_some_and(|kind| kind.ends_with("ManagementObjectNotFoundException"))
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
            ServiceMessage {
                code: "Request_ResourceNotFound".into(),
                message: "Resource 'x' does not exist".into(),
                exception: None
            }
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
                message: "AADSTS7000215: Invalid client secret provided.".into(),
                exception: None,
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
