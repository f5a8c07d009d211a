//! The promises a hostile review and a new administrator's first week broke, one test each: a
//! resume refuses a changed desired state.

use remediate::sim::{Population, SimConfig};

use crate::support::{TUNING, connection_args, run, scratch, start, state, upns, write_csv};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_refuses_a_profile_that_changed_since_the_run_began() {
    let sim = start(SimConfig { population: Population::Generated { count: 6 }, ..SimConfig::default() }).await;
    let dir = scratch();
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &upns(&state(&sim)));
    let profile = dir.path().join("sweep.toml");
    std::fs::write(&profile, "description = \"nightly\"\n[settings]\nsmtp-auth = \"disabled\"\n").unwrap();
    let report = dir.path().join("report");
    let mut apply = vec!["apply".to_string(), csv.display().to_string(), "--profile".into()];
    apply.extend([profile.display().to_string(), "--yes".into(), "--report-dir".into(), report.display().to_string()]);
    apply.extend(connection_args(&sim, dir.path()));
    apply.extend(TUNING.map(String::from));
    assert_eq!(run(&apply).await, 0);

    let mut resume = vec!["apply".to_string(), "--resume".into(), report.display().to_string(), "--yes".into()];
    resume.extend(connection_args(&sim, dir.path()));
    assert_eq!(run(&resume).await, 0, "the same profile resumes");
    std::fs::write(&profile, "description = \"nightly\"\n[settings]\nsmtp-auth = \"enabled\"\n").unwrap();
    assert_eq!(run(&resume).await, 2, "an edited profile is refused");
}
