use super::*;

#[test]
fn durations_parse_with_units() {
    assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert!(parse_duration("0").is_err());
    assert!(parse_duration("abc").is_err());
    assert!(parse_duration("5 parsecs").is_err());
}

#[test]
fn the_command_line_is_consistent() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
}

/// Every numeric flag of `apply`.
const NUMERIC_FLAGS: [&str; 10] = [
    "--concurrency",
    "--graph-rps",
    "--graph-write-rps",
    "--exchange-rps",
    "--exchange-inflight",
    "--max-attempts",
    "--request-timeout",
    "--grace",
    "--only-smtp-auth-seen",
    "--shard",
];

/// Values at the edges of what a number or a duration can be, as typed.
const EDGES: [&str; 30] = [
    "0",
    "-0",
    "-1",
    "1e-300",
    "0.1",
    "0.49",
    "0.5",
    "1",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "1e308",
    "-1e308",
    "1.7976931348623157e308",
    "4294967296",
    "18446744073709551616",
    "",
    " ",
    "1e",
    "0s",
    "1ms",
    "99ms",
    "100ms",
    "1h",
    "3601s",
    "1e308s",
    "31d",
    "0/0",
    "4294967295/4294967295",
];

/// `apply` with `flag=value`: refused with a message that names the flag, or a tuning whose
/// pacers go through a run's life (a 429, a warning, a remembered budget, a share) unharmed.
fn parses_or_names_the_flag(flag: &str, value: &str) {
    use clap::Parser;
    let argument = format!("{flag}={value}");
    let cli = match Cli::try_parse_from(["remediate", "apply", "m.csv", argument.as_str()]) {
        Err(error) => {
            let text = error.to_string();
            assert!(text.contains(flag), "the refusal of {argument:?} does not name the flag: {text}");
            return;
        }
        Ok(cli) => cli,
    };
    let Command::Apply(apply) = cli.command else { panic!("not apply") };
    let tuning = crate::run::tuning::Tuning::from(&apply.run.session.tuning);
    let pacing = tuning.pacing();
    let _ = tuning.retry_policy();
    let ceilings = [(pacing.graph_rps, None), (pacing.graph_write_rps, None), (pacing.exchange_rps, Some(4))];
    for ((ceiling, inflight), adaptive) in ceilings.into_iter().flat_map(|c| [(c, true), (c, false)]) {
        let pacer = crate::cloud::pacer::Pacer::new("api", ceiling, 1.0, inflight, adaptive);
        pacer.start_from(1_000.0, false);
        pacer.throttled(Duration::from_millis(10));
        pacer.succeeded(Some(1.5));
        pacer.succeeded(None);
        pacer.reshare(0.25);
        pacer.start_from(0.01, true);
        pacer.throttled(Duration::from_millis(10));
        let _ = pacer.state();
    }
}

#[test]
fn numeric_flags_at_their_edges_are_refused_by_name_or_used_safely() {
    for flag in NUMERIC_FLAGS {
        for value in EDGES {
            parses_or_names_the_flag(flag, value);
        }
    }
}

#[test]
fn a_rate_under_the_pacers_floor_is_refused_naming_the_flag() {
    use clap::Parser;
    let error = Cli::try_parse_from(["remediate", "apply", "m.csv", "--graph-rps", "0.1"]).expect_err("refused");
    let text = error.to_string();
    assert!(text.contains("--graph-rps '0.1': give requests a second from 0.5 to 100000"), "{text}");
}

proptest::proptest! {
    #[test]
    fn any_number_for_any_numeric_flag_is_refused_by_name_or_used_safely(
        flag in proptest::sample::select(NUMERIC_FLAGS.to_vec()),
        number in proptest::num::f64::ANY,
        unit in proptest::sample::select(vec!["", "ms", "s", "m", "h", "d"]),
        scientific: bool,
    ) {
        let value = if scientific { format!("{number:e}{unit}") } else { format!("{number}{unit}") };
        parses_or_names_the_flag(flag, &value);
    }

    #[test]
    fn any_text_for_any_numeric_flag_is_refused_by_name_or_used_safely(
        flag in proptest::sample::select(NUMERIC_FLAGS.to_vec()),
        value in "\\PC{0,16}",
    ) {
        parses_or_names_the_flag(flag, &value);
    }
}
