use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::BodyBudget;
use crate::cloud::transport::receive_within;

const KIB: usize = 1024;

/// How the hostile endpoint sends its bodies.
#[derive(Clone, Copy)]
enum Framing {
    /// With a `Content-Length`.
    Length,
    /// Chunked, in pieces of 64 KiB, so the length is known only at the end.
    Chunked,
}

/// A local endpoint that answers every request, on any number of connections, with `size` bytes.
async fn hostile_endpoint(size: usize, framing: Framing) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a local port");
    let address = listener.local_addr().expect("its address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer_every_request(stream, size, framing));
        }
    });
    format!("http://{address}/")
}

async fn answer_every_request(mut stream: TcpStream, size: usize, framing: Framing) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        // Requests here have no body: the end of the headers is the end of the request.
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buffer[..n]),
            }
        }
        request.clear();
        let body = vec![b'x'; size];
        let sent = match framing {
            Framing::Length => {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {size}\r\n\r\n");
                stream.write_all(&[head.as_bytes(), &body].concat()).await
            }
            Framing::Chunked => {
                let mut wire = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
                for piece in body.chunks(64 * KIB) {
                    wire.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                    wire.extend_from_slice(piece);
                    wire.extend_from_slice(b"\r\n");
                }
                wire.extend_from_slice(b"0\r\n\r\n");
                stream.write_all(&wire).await
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().expect("a client")
}

/// Sends `count` requests at once, each answer dropped as soon as it is read (as the client
/// parses and lets go of its answers); returns how many were read whole.
async fn read_many(url: &str, count: usize, cap: usize, budget: &Arc<BodyBudget>) -> usize {
    let http = client();
    let reads = (0..count).map(|_| {
        let (http, url, budget) = (http.clone(), url.to_string(), Arc::clone(budget));
        tokio::spawn(async move { receive_within(http.get(url), cap, &budget).await.map(|answer| answer.body.len()) })
    });
    let mut whole = 0;
    for read in reads.collect::<Vec<_>>() {
        if let Ok(Ok(_)) = read.await {
            whole += 1;
        }
    }
    whole
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_in_flight_never_hold_more_than_the_budget_together() {
    // Each answer just under its own cap, and sixteen of them at once: without a shared budget
    // they would hold 16 × 900 KiB together.
    let budget = BodyBudget::new(1024 * KIB);
    let url = hostile_endpoint(900 * KIB, Framing::Length).await;
    let whole = read_many(&url, 16, 960 * KIB, &budget).await;
    assert_eq!(whole, 16, "every answer is read in the end: reading waits for the budget, it does not fail");
    assert!(budget.peak() <= budget.capacity(), "{} bytes held at once, over {}", budget.peak(), budget.capacity());
    assert!(budget.peak() >= 900 * KIB, "the answers were counted ({} bytes at most)", budget.peak());
    assert_eq!(budget.held(), 0, "every answer gave its share back when dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_answer_waits_for_the_budget_another_answer_holds() {
    let budget = BodyBudget::new(1024 * KIB);
    let held = hostile_endpoint(800 * KIB, Framing::Length).await;
    let first = receive_within(client().get(held), 960 * KIB, &budget).await.expect("the first answer");
    let chunked = hostile_endpoint(400 * KIB, Framing::Chunked).await;
    let second = {
        let budget = Arc::clone(&budget);
        tokio::spawn(async move { receive_within(client().get(chunked), 960 * KIB, &budget).await })
    };
    // The chunked answer takes what is left, then waits (no timer: the budget counts waiters).
    while budget.waiting() == 0 && !second.is_finished() {
        tokio::task::yield_now().await;
    }
    assert!(!second.is_finished(), "it waits while the first answer is held");
    drop(first);
    let second = second.await.expect("the task").expect("read whole once the first was given back");
    assert_eq!(second.body.len(), 400 * KIB);
    assert!(budget.peak() <= budget.capacity(), "{} bytes held at once", budget.peak());
    drop(second);
    assert_eq!(budget.held(), 0);
}

#[tokio::test]
async fn an_answer_larger_than_the_whole_budget_fails_rather_than_waits_for_ever() {
    let budget = BodyBudget::new(256 * KIB);
    for framing in [Framing::Length, Framing::Chunked] {
        let url = hostile_endpoint(512 * KIB, framing).await;
        let failure = receive_within(client().get(url), 1024 * KIB, &budget).await.expect_err("over the budget");
        assert!(failure.message.contains("all answers in flight may hold together"), "{}", failure.message);
        assert!(failure.sent, "the request went out: a write is read back, not sent again blindly");
    }
    assert_eq!(budget.held(), 0);
}

#[tokio::test]
async fn the_answer_cap_still_holds_on_its_own() {
    let url = hostile_endpoint(300 * KIB, Framing::Length).await;
    let failure = receive_within(client().get(url), 256 * KIB, BodyBudget::global()).await.expect_err("over the cap");
    assert!(failure.message.contains("larger than 256 KiB"), "{}", failure.message);
}
