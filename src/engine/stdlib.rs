//! The stdlib: recipes embedded in the binary, imported as `galley/NAME`.

/// Every stdlib module: (name, source).
pub const MODULES: &[(&str, &str)] = &[
    ("in_place", include_str!("../../stdlib/in_place.rhai")),
    ("blue_green", include_str!("../../stdlib/blue_green.rhai")),
    ("releases", include_str!("../../stdlib/releases.rhai")),
    ("rolling", include_str!("../../stdlib/rolling.rhai")),
    ("canary", include_str!("../../stdlib/canary.rhai")),
    ("swarm", include_str!("../../stdlib/swarm.rhai")),
];

/// The source of `galley/NAME`.
pub fn get(name: &str) -> Option<&'static str> {
    MODULES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}
