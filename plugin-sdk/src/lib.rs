//! Write Hookhost lifecycle hooks in Rust.
//!
//! A hook component is a type that implements [`Hooks`] plus one
//! [`export_hooks!`] line. Build it with
//! `cargo build --release --target wasm32-wasip2`; the `.wasm` file cargo
//! writes is the component the host loads.
//!
//! ```no_run
//! use hookhost_sdk::{Context, Hooks, Result, Service, fail, log, meta};
//!
//! struct Echo;
//!
//! impl Hooks for Echo {
//!     fn services() -> Vec<Service> {
//!         vec![Service::Init, Service::Start]
//!     }
//!
//!     fn run(ctx: &Context) -> Result<()> {
//!         let me = meta::this_host()?;
//!         match ctx.service() {
//!             Service::Init => {
//!                 let port = meta::env_or("port", "8080")?;
//!                 std::fs::write("/data/echo.conf", format!("listen {}:{port}\n", me.ip))
//!                     .map_err(|e| fail(10, format!("cannot write /data/echo.conf: {e}")))?;
//!                 log::info(&format!("configured {} on port {port}", me.ip));
//!             }
//!             Service::Start => log::info("started"),
//!             _ => {}
//!         }
//!         Ok(())
//!     }
//! }
//!
//! hookhost_sdk::export_hooks!(Echo);
//! ```
//!
//! Inside a hook the node's own directories are the only filesystem (the
//! node root is `/`), there is no network, no environment and no arguments;
//! the cluster is read through [`meta`] and logs go through [`log`].

// Lets the generated bindings name this crate the same way from inside and outside.
extern crate self as hookhost_sdk;

mod context;
mod error;
pub mod log;
pub mod meta;

pub use context::{ConfigFile, Context, SYSTEM_SERVICES, service_name};
pub use error::{Error, fail};

/// Generated bindings of the `hookhost:hooks` WIT package.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "role-hooks",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_role_hooks",
        default_bindings_module: "hookhost_sdk::bindings",
        runtime_path: "hookhost_sdk::__private::wit_bindgen::rt",
    });
}

pub use bindings::hookhost::hooks::types::{NodeContext, Operation, Service};

/// The result of a hook: `Ok` or an [`Error`] with a numeric code.
pub type Result<T> = std::result::Result<T, Error>;

/// A hook component: the services it implements and how it runs them.
pub trait Hooks {
    /// The services this component implements; the host calls no others.
    fn services() -> Vec<Service>;

    /// Runs `ctx.service()` on this node.
    fn run(ctx: &Context) -> Result<()>;

    /// Renders this node's config files from the metadata (the confd
    /// equivalent). The default renders none.
    fn render(node: &NodeContext) -> Result<Vec<ConfigFile>> {
        let _ = node;
        Ok(Vec::new())
    }
}

/// The README's Rust example, compiled as a doc test so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExample;

/// Exports a [`Hooks`] implementation as the component's hooks.
#[macro_export]
macro_rules! export_hooks {
    ($hooks:ty) => {
        struct __HookhostExport;

        impl $crate::bindings::exports::hookhost::hooks::hooks::Guest for __HookhostExport {
            fn services() -> ::std::vec::Vec<$crate::Service> {
                <$hooks as $crate::Hooks>::services()
            }

            fn run(
                ctx: $crate::bindings::hookhost::hooks::types::HookContext,
            ) -> ::std::result::Result<
                ::std::option::Option<::std::string::String>,
                $crate::bindings::hookhost::hooks::types::HookError,
            > {
                $crate::__private::run::<$hooks>(ctx)
            }

            fn render(
                node: $crate::NodeContext,
            ) -> ::std::result::Result<
                ::std::vec::Vec<$crate::bindings::hookhost::hooks::types::ConfigFile>,
                $crate::bindings::hookhost::hooks::types::HookError,
            > {
                $crate::__private::render::<$hooks>(node)
            }
        }

        $crate::bindings::__export_role_hooks!(__HookhostExport with_types_in $crate::bindings);
    };
}

/// Glue used by [`export_hooks!`]; not part of the API.
#[doc(hidden)]
pub mod __private {
    use crate::bindings::hookhost::hooks::types as wit;
    use crate::{Context, Hooks, NodeContext};

    pub use wit_bindgen;

    /// Runs one service and converts the SDK types to the WIT ones.
    pub fn run<H: Hooks>(ctx: wit::HookContext) -> Result<Option<String>, wit::HookError> {
        let ctx = Context::new(ctx);
        H::run(&ctx).map_err(wit::HookError::from)?;
        Ok(ctx.take_reply())
    }

    /// Renders the node's config files and converts them to the WIT type.
    pub fn render<H: Hooks>(node: NodeContext) -> Result<Vec<wit::ConfigFile>, wit::HookError> {
        let files = H::render(&node).map_err(wit::HookError::from)?;
        Ok(files.into_iter().map(Into::into).collect())
    }
}
