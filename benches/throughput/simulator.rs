//! The simulated tenant in its own process (`remediate sim`, seeded with `SEED`, its mailboxes
//! from a CSV): the environment it prints for the runner, and its observability routes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::SEED;

pub(crate) struct Sim {
    child: Child,
    pub(crate) url: String,
    pub(crate) env: Vec<(String, String)>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start_sim(csv: &Path, args: &[String]) -> Sim {
    let mut child = Command::new(env!("CARGO_BIN_EXE_remediate"))
        .args(["-q", "sim", "--listen", "127.0.0.1:0", "--seed", &SEED.to_string(), "--from"])
        .arg(csv)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("remediate sim starts");
    let mut env = Vec::new();
    let mut url = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("export ") {
            let (name, value) = rest.split_once('=').unwrap();
            env.push((name.to_string(), value.to_string()));
        }
        if let Some(address) = line.strip_prefix("listening on ") {
            url = address.to_string();
            break;
        }
    }
    Sim { child, url, env }
}

pub(crate) async fn sim_json(sim: &Sim, path: &str) -> Value {
    reqwest::get(format!("{}{path}", sim.url)).await.unwrap().json().await.unwrap()
}
