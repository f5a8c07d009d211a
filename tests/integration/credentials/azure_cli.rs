//! The Azure CLI's account: an admin at a laptop signs in with `az` (a stand-in on PATH that
//! answers `az account get-access-token` with the simulator's tokens).

use remediate_sim::{Population, SimConfig};

use super::plan_signed_in_by;
use crate::support::{scratch, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_at_a_laptop_signs_in_with_the_azure_cli() {
    let sim = start(SimConfig { population: Population::Generated { count: 10 }, ..SimConfig::default() }).await;
    let dir = scratch();
    let http = reqwest::Client::new();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (name, scope) in
        [("graph", "https://graph.microsoft.com/.default"), ("exchange", "https://outlook.office365.com/.default")]
    {
        std::fs::write(dir.path().join(name), sim.client_token(&http, scope).await.unwrap()).unwrap();
    }
    // A stand-in for `az account get-access-token --resource R --tenant T --output json`.
    let stub = format!(
        "#!/bin/sh\ncase \"$*\" in\n  *get-access-token*graph.microsoft.com*) f={0}/graph ;;\n  *get-access-token*outlook.office365.com*) f={0}/exchange ;;\n  *) echo 'ERROR: unexpected arguments' >&2; exit 1 ;;\nesac\nprintf '{{\"accessToken\": \"%s\", \"expires_on\": %s, \"tokenType\": \"Bearer\"}}' \"$(cat $f)\" \"$(( $(date +%s) + 3000 ))\"\n",
        dir.path().display()
    );
    let az = bin.join("az");
    crate::support::write_executable(&az, &stub);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let (code, stderr) = plan_signed_in_by(&sim, dir.path(), vec![("PATH".to_string(), path)], &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("signing in with the Azure CLI's account"), "{stderr}");
}
