use super::*;

fn ask(key: &str, limit: u64, amount: u64) -> Ask {
    Ask {
        key: key.into(),
        limit,
        amount,
        ttl: 60,
    }
}

fn settlement(key: &str, reserved: u64, actual: u64) -> Settlement {
    Settlement {
        key: key.into(),
        reserved,
        actual,
        ttl: 60,
    }
}

#[test]
fn reservations_count_until_settled_and_all_or_none_is_reserved() {
    let store = local::Local::default();
    let held = |spent, reserved| Held { spent, reserved };
    let asks = [ask("a", 12, 4), ask("b", 100, 50)];
    assert_eq!(
        store.check(&asks, 0),
        Checked::Admitted(vec![held(0, 0), held(0, 0)])
    );
    assert_eq!(
        store.check(&asks, 0),
        Checked::Admitted(vec![held(0, 4), held(0, 50)])
    );
    // a has room for a third, b has not: nothing is reserved on a either.
    assert_eq!(store.check(&asks, 0), Checked::Over(1, held(0, 100)));
    // Settled for less than reserved: the difference is room again.
    store.settle(&[settlement("a", 4, 1), settlement("b", 50, 20)], 0);
    assert_eq!(store.check(&asks, 0), Checked::Over(1, held(20, 50)));
    store.settle(&[settlement("a", 4, 1), settlement("b", 50, 20)], 0);
    assert_eq!(
        store.check(&asks, 0),
        Checked::Admitted(vec![held(2, 0), held(40, 0)])
    );
    // Exactly at the limit is allowed; one more is not.
    assert_eq!(
        store.check(&[ask("a", 12, 6)], 0),
        Checked::Admitted(vec![held(2, 4)])
    );
    assert_eq!(
        store.check(&[ask("a", 12, 1)], 0),
        Checked::Over(0, held(2, 10))
    );
    // A window's counter is gone once it expires.
    assert_eq!(
        store.check(&[ask("a", 12, 1)], 61),
        Checked::Admitted(vec![held(0, 0)])
    );
}

#[test]
fn a_refusal_names_the_limit_and_when_it_resets() {
    let applies = file::Applies {
        model: None,
        kind: Kind::MonthlyUsd,
        limit: 5 * file::NANO_PER_USD,
    };
    let window = Window::of(
        Kind::MonthlyUsd,
        UNIX_EPOCH + Duration::from_secs(1_798_761_570),
    );
    let message = over_message(
        "checkout",
        &applies,
        &ask("k", 0, 1_500_000),
        Held {
            spent: 4_999_000_000,
            reserved: 500_000,
        },
        window,
    );
    assert_eq!(
        message,
        "Rate exceeded: app \"checkout\" is at its monthly_usd limit of $5.000000 (used $4.999000, reserved by calls in flight $0.000500, this call needs up to $0.001500); it resets at 2027-01-01T00:00:00.000Z"
    );
    assert_eq!(nano_up(1), 1);
    assert_eq!(nano_up(2000), 2);
    assert_eq!(
        key("a", Some("m:0"), Kind::TokensPerMinute, 7),
        "bedrock-meter:limit:a:m:0:tokens_per_minute:7"
    );
}
