//! Host bindings of the `hookhost:hooks` WIT package (`wit/hooks.wit`).

wasmtime::component::bindgen!({
    world: "role-hooks",
    path: "../wit",
    imports: { default: trappable },
    exports: { default: async },
    additional_derives: [PartialEq, Eq],
});

/// The WIT package this host speaks, as components name it.
pub const PACKAGE: &str = "hookhost:hooks@0.1.0";
/// The export every hook component must provide.
pub const HOOKS_EXPORT: &str = "hookhost:hooks/hooks@0.1.0";
