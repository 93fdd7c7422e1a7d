//! The mechanism with a made-up service; the loader with the real services' tables is
//! tested in the `floodgate` crate (`src/settings/tests.rs`).

use super::*;

const COLOUR: &str = "TEST_COLOUR";
const SIZE: &str = "TEST_SIZE";

#[derive(Debug, Clone, PartialEq)]
struct Paint {
    colour: String,
    size: u64,
}

impl ServiceSettings for Paint {
    const TABLE: &'static [Setting] = &[
        Setting::new(COLOUR, &["TEST_COLOR"], Some("blue"), "a colour"),
        Setting::new(SIZE, &[], Some("3"), "a size"),
    ];

    fn parse(r: &Resolved) -> Result<Self, ConfigError> {
        Ok(Paint {
            colour: r.text(COLOUR)?,
            size: parse::parse_positive(r, SIZE)?,
        })
    }
}

/// Reads a name its table lacks.
#[derive(Debug, Clone)]
struct Misspelled;

impl ServiceSettings for Misspelled {
    const TABLE: &'static [Setting] = &[Setting::new("TEST_KNOWN", &[], Some("1"), "known")];

    fn parse(r: &Resolved) -> Result<Self, ConfigError> {
        parse::parse_positive(r, "TEST_KNOWM")?;
        Ok(Misspelled)
    }
}

#[test]
fn a_service_table_is_resolved_and_parsed_into_its_section() {
    let schema = Schema::core().with::<Paint>();
    let r = schema
        .resolve(&[Layer::of(Source::Env, &[("TEST_COLOR", "red")])])
        .unwrap();
    let c = schema.config(&r).unwrap();
    assert_eq!(
        c.settings::<Paint>(),
        &Paint {
            colour: "red".into(),
            size: 3
        }
    );
    assert!(r
        .render()
        .contains("TEST_COLOUR = \"red\"  # environment as TEST_COLOR"));
    let bad = schema
        .resolve(&[Layer::of(Source::Env, &[(SIZE, "0")])])
        .unwrap();
    let err = schema.config(&bad).unwrap_err().to_string();
    assert!(err.contains(SIZE), "{err}");
}

#[test]
fn a_name_in_no_table_is_an_error_not_an_empty_value() {
    let schema = Schema::core().with::<Misspelled>();
    let err = schema.load_from(&LoadOptions::default(), std::iter::empty());
    match err {
        Err(ConfigError::Unregistered(name)) => assert_eq!(name, "TEST_KNOWM"),
        other => panic!("expected Unregistered, got {other:?}"),
    }
    let r = Schema::core().resolve(&[]).unwrap();
    assert!(matches!(r.text(COLOUR), Err(ConfigError::Unregistered(_))));
    // Flags name settings of the schema only.
    let opts = LoadOptions {
        flags: vec![(COLOUR.into(), "red".into())],
        ..LoadOptions::default()
    };
    let err = Schema::core()
        .load_from(&opts, std::iter::empty())
        .unwrap_err();
    assert!(matches!(err, ConfigError::Unknown(_)), "{err}");
}

#[test]
fn core_defaults_have_no_sections_until_a_test_adds_one() {
    let mut c = Config::defaults();
    assert!(c.try_settings::<Paint>().is_none());
    c.settings_mut::<Paint>().size = 7;
    assert_eq!(c.settings::<Paint>().colour, "blue");
    assert_eq!(c.clone().settings::<Paint>().size, 7);
}

#[test]
#[should_panic(expected = "already registered")]
fn a_name_registered_twice_is_refused() {
    let _ = Schema::core().with::<Paint>().with::<Paint>();
}
