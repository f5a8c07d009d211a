use super::*;

/// `n` requests let through and answered by the service, spread over `over`.
async fn traffic(pacer: &Pacer, n: u64, over: Duration) {
    tokio::time::advance(over).await;
    pacer.sent.fetch_add(n, Ordering::Relaxed);
    pacer.answered.fetch_add(n, Ordering::Relaxed);
}

/// A pacer at 1,000/s that has been throttled twice, five seconds apart, with `per_second`
/// answered in between: it has measured a budget of `per_second`.
async fn measured(per_second: u64) -> Pacer {
    let pacer = Pacer::new("graph", 1000.0, 250.0, None, true);
    traffic(&pacer, 250, STEP).await;
    pacer.throttled(Duration::from_secs(1));
    traffic(&pacer, per_second * 5, Duration::from_secs(5)).await;
    pacer.throttled(Duration::from_secs(1));
    pacer
}

fn holds(pacer: &Pacer, budget: f64) -> bool {
    (pacer.current_rate() - budget * HOLD).abs() < 1e-9
}

#[tokio::test(start_paused = true)]
async fn a_429_holds_every_worker_until_retry_after() {
    let pacer = Pacer::new("graph", 1000.0, 250.0, None, true);
    assert_eq!(pacer.current_rate(), 250.0, "an adaptive pacer starts where it is told, below its ceiling");
    traffic(&pacer, 200, STEP).await;
    pacer.throttled(Duration::from_secs(3));
    pacer.throttled(Duration::from_secs(3));
    let start = Instant::now();
    pacer.acquire().await;
    assert!(start.elapsed() >= Duration::from_secs(3), "{:?}", start.elapsed());
    assert_eq!(pacer.current_rate(), 200.0 * BLIND_CUT, "one burst of 429s cuts the rate sent, once");
    assert_eq!(pacer.throttled_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_budget_is_what_the_service_answered_between_two_429s() {
    let pacer = measured(80).await;
    assert!(holds(&pacer, 80.0), "{}", pacer.current_rate());
}

#[tokio::test(start_paused = true)]
async fn a_measure_over_an_idle_spell_only_raises_the_budget() {
    let pacer = measured(100).await;
    assert!(holds(&pacer, 100.0));
    // The first second holds the 429's pause, which does not count; the next is idle.
    for _ in 0..2 {
        traffic(&pacer, 10, Duration::from_secs(2)).await;
        pacer.succeeded(None);
    }
    traffic(&pacer, 240, Duration::from_secs(1)).await;
    pacer.throttled(Duration::from_secs(1));
    assert!(holds(&pacer, 100.0), "idle, the bucket may have overflowed");
    traffic(&pacer, 400, Duration::from_secs(5)).await;
    pacer.throttled(Duration::from_secs(1));
    assert!(holds(&pacer, 80.0), "busy throughout, a lower measure stands");
}

#[tokio::test(start_paused = true)]
async fn warnings_measure_the_budget_before_any_429() {
    let pacer = Pacer::new("graph", 1000.0, 250.0, None, true);
    traffic(&pacer, 250, STEP).await;
    pacer.succeeded(Some(0.81));
    assert_eq!(pacer.current_rate(), 250.0 * BLIND_CUT, "the first warning after the climb halves what was sent");
    traffic(&pacer, 10, Duration::from_millis(100)).await;
    pacer.succeeded(Some(0.95));
    assert_eq!(pacer.current_rate(), 250.0 * BLIND_CUT, "warnings close together are one episode");
    traffic(&pacer, 290, Duration::from_millis(3900)).await;
    pacer.succeeded(Some(0.81));
    assert!(holds(&pacer, 75.0), "{}", pacer.current_rate());
    assert_eq!(pacer.throttled_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_fuller_bucket_at_the_second_warning_is_not_counted_as_budget() {
    let pacer = Pacer::new("graph", 1000.0, 250.0, None, true);
    traffic(&pacer, 250, STEP).await;
    pacer.succeeded(Some(0.8));
    // 300 answered in 2 s while the bucket went from 0.8 to 0.9 used: a tenth of a 10 s window,
    // a second's worth of budget, came out of the bucket.
    traffic(&pacer, 300, Duration::from_secs(2)).await;
    pacer.succeeded(Some(0.9));
    assert!(holds(&pacer, 100.0), "{}", pacer.current_rate());
}

#[tokio::test(start_paused = true)]
async fn the_rate_climbs_only_while_it_is_used() {
    let pacer = Pacer::new("graph", 100.0, 25.0, None, true);
    tokio::time::advance(STEP).await;
    pacer.succeeded(None);
    assert_eq!(pacer.current_rate(), 25.0, "an idle rate proves nothing");
    traffic(&pacer, 25, STEP).await;
    pacer.succeeded(None);
    assert_eq!(pacer.current_rate(), 25.0 * CLIMB, "before any push back it doubles every second");
    for _ in 0..20 {
        let sent = pacer.current_rate() as u64 + 1;
        traffic(&pacer, sent, STEP).await;
        pacer.succeeded(None);
    }
    assert_eq!(pacer.current_rate(), 100.0, "never past the configured rate");
}

#[tokio::test(start_paused = true)]
async fn near_the_measured_budget_it_holds_and_probes_slowly() {
    let pacer = measured(100).await;
    let held = pacer.current_rate();
    assert!(holds(&pacer, 100.0));
    traffic(&pacer, 100, STEP).await;
    pacer.succeeded(Some(0.85));
    assert_eq!(pacer.current_rate(), held, "a first warning marks the budget, which is measured already");
    traffic(&pacer, 100, STEP).await;
    pacer.succeeded(Some(0.95));
    assert!((pacer.current_rate() - held * 0.95).abs() < 1e-9, "a nearly spent budget trims the rate");
    for _ in 0..8 {
        traffic(&pacer, 100, STEP).await;
        pacer.succeeded(None);
    }
    let held = pacer.current_rate();
    assert!(holds(&pacer, 100.0), "back at the measure, it holds: {held}");
    for _ in 0..3 {
        traffic(&pacer, 100, STEP).await;
        pacer.succeeded(None);
    }
    let probed = pacer.current_rate();
    assert!(probed > held && probed < held * 1.07, "after a quiet spell it probes past the measure: {probed}");
}

#[tokio::test(start_paused = true)]
async fn a_fixed_rate_never_moves() {
    let pacer = Pacer::new("graph", 100.0, 25.0, None, false);
    assert_eq!(pacer.current_rate(), 100.0);
    traffic(&pacer, 100, STEP).await;
    pacer.throttled(Duration::from_millis(1));
    pacer.succeeded(Some(0.99));
    assert_eq!(pacer.current_rate(), 100.0);
}

#[tokio::test(start_paused = true)]
async fn the_in_flight_cap_holds() {
    let pacer = Pacer::new("exchange", 1000.0, 1000.0, Some(2), false);
    let a = pacer.acquire().await;
    let _b = pacer.acquire().await;
    let third = tokio::time::timeout(Duration::from_secs(1), pacer.acquire()).await;
    assert!(third.is_err(), "a third request must wait for a slot");
    drop(a);
    assert!(tokio::time::timeout(Duration::from_secs(1), pacer.acquire()).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_remembered_budget_is_the_start_and_the_first_429_goes_straight_back_under_it() {
    let pacer = Pacer::new("graph", 1000.0, 10.0, None, true);
    pacer.start_from(200.0, false);
    assert!(holds(&pacer, 200.0), "{}", pacer.current_rate());
    let state = pacer.state();
    assert_eq!((state.start, state.remembered, state.budget), (200.0 * HOLD, Some(200.0), None));
    for _ in 0..2 {
        let sent = pacer.current_rate() as u64 + 1;
        traffic(&pacer, sent, STEP).await;
        pacer.succeeded(None);
    }
    assert!(pacer.current_rate() > 700.0, "the bucket starts full: spend it ({})", pacer.current_rate());
    pacer.throttled(Duration::from_secs(1));
    assert!(holds(&pacer, 200.0), "no blind cut, no second mark: {}", pacer.current_rate());
    for _ in 0..4 {
        let sent = pacer.current_rate() as u64 + 1;
        traffic(&pacer, sent, STEP).await;
        pacer.succeeded(None);
    }
    assert!(pacer.current_rate() < 202.0, "past a known budget, slowly: {}", pacer.current_rate());
    let fixed = Pacer::new("graph", 100.0, 100.0, None, false);
    fixed.start_from(20.0, false);
    assert_eq!(fixed.current_rate(), 100.0, "--fixed-rate wins over memory");
}

#[tokio::test(start_paused = true)]
async fn a_shard_holds_its_share_from_the_start() {
    let pacer = Pacer::new("exchange", 1000.0, 10.0, None, true);
    pacer.start_from(30.0, true);
    for _ in 0..4 {
        let sent = pacer.current_rate() as u64 + 1;
        traffic(&pacer, sent, STEP).await;
        pacer.succeeded(None);
    }
    assert!(pacer.current_rate() < 30.5, "the others spend the same bucket: {}", pacer.current_rate());
}

#[tokio::test(start_paused = true)]
async fn a_request_waiting_for_a_slot_waits_out_a_pause_that_began_meanwhile() {
    let pacer = Pacer::new("exchange", 1000.0, 1000.0, Some(1), false);
    let held = pacer.acquire().await;
    let waiting = pacer.acquire();
    tokio::pin!(waiting);
    assert!(tokio::time::timeout(Duration::from_millis(10), &mut waiting).await.is_err(), "no slot yet");
    pacer.throttled(Duration::from_secs(2));
    let paused_at = Instant::now();
    drop(held);
    waiting.await;
    assert!(paused_at.elapsed() >= Duration::from_secs(2), "it went during the pause: {:?}", paused_at.elapsed());
}

#[tokio::test(start_paused = true)]
async fn a_page_that_targets_wait_on_goes_ahead_of_the_line() {
    let pacer = std::sync::Arc::new(Pacer::new("exchange", 10.0, 10.0, None, false));
    let (order, mut through) = tokio::sync::mpsc::unbounded_channel();
    let wait = |id: u32, ahead: bool| {
        let (pacer, order) = (pacer.clone(), order.clone());
        tokio::spawn(async move {
            if ahead {
                pacer.acquire_ahead().await;
            } else {
                pacer.acquire().await;
            }
            order.send(id).unwrap();
        })
    };
    for id in 0..20 {
        wait(id, false);
    }
    // A second of the line goes by: the page comes while most still wait.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut seen = Vec::new();
    while let Ok(id) = through.try_recv() {
        seen.push(id);
    }
    let through_before_page = seen.len();
    assert!(through_before_page < 15, "{seen:?}");
    wait(99, true);
    drop(order);
    while let Some(id) = through.recv().await {
        seen.push(id);
    }
    let page = seen.iter().position(|id| *id == 99).unwrap();
    assert!(page <= through_before_page + 1, "behind at most the one at the limiter: {seen:?}");
}

#[test]
fn the_head_of_a_line_waits_for_a_group_and_leaves_a_turn_of_slack() {
    assert_eq!(rate::group_wait(8.7), Duration::ZERO, "a shard's share of Exchange: one by one");
    for rate in [20.0, 25.0, 30.0, 100.0, 1400.0] {
        let burst = rate::burst(rate);
        assert!(burst <= (rate / 10.0_f64).ceil().max(5.0), "at {rate}/s a burst of {burst}");
        // The head wakes when its own turn and the group's are due: all must fit in the burst,
        // with one turn to spare for a late wake-up.
        let due = rate * (1.0 / rate + rate::group_wait(rate).as_secs_f64());
        assert!(due >= 2.0 - 1e-6, "at {rate}/s a group of {due:.1}");
        assert!(due <= burst - 1.0 + 1e-6, "at {rate}/s, {due:.1} turns due of a burst of {burst}");
    }
}

/// A ceiling the command line would refuse (from a run.json edited by hand) is held to the
/// pacer's range instead of making `clamp(FLOOR, ceiling)` panic at the first 429.
#[test]
fn a_ceiling_under_the_floor_or_not_a_number_is_held_to_the_range() {
    for ceiling in [0.1, 0.0, -5.0, f64::NAN, f64::INFINITY, 1e308] {
        let pacer = Pacer::new("graph", ceiling, 1.0, None, true);
        pacer.start_from(1_000.0, false);
        pacer.throttled(Duration::from_millis(10));
        pacer.reshare(0.5);
        let rate = pacer.current_rate();
        assert!(rate.is_finite() && rate >= 0.5, "{ceiling}: {rate}");
    }
}
