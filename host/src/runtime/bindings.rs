//! Host bindings for the four worlds of `wit/plugin.wit`. The probe world's
//! bindings own the shared `types`, `host`, `icmp` and `filesystem-stats`
//! interfaces; the other worlds
//! reuse them so one host implementation serves all four. WASI interfaces
//! map to wasmtime-wasi's and wasmtime-wasi-http's own bindings.

macro_rules! world_bindings {
    ($module:ident, $world:literal $(, $shared:literal => $path:path)*) => {
        pub mod $module {
            wasmtime::component::bindgen!({
                path: "../wit",
                world: $world,
                imports: { default: async | trappable },
                exports: { default: async },
                require_store_data_send: true,
                with: {
                    $($shared: $path,)*
                    "wasi:io": wasmtime_wasi::p2::bindings::io,
                    "wasi:cli": wasmtime_wasi::p2::bindings::cli,
                    "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
                    "wasi:filesystem": wasmtime_wasi::p2::bindings::filesystem,
                    "wasi:random": wasmtime_wasi::p2::bindings::random,
                    "wasi:sockets": wasmtime_wasi::p2::bindings::sockets,
                    "wasi:http": wasmtime_wasi_http::p2::bindings::http,
                },
            });
        }
    };
}

world_bindings!(probe, "lookout:plugin/probe");

macro_rules! sharing_world_bindings {
    ($module:ident, $world:literal) => {
        world_bindings!(
            $module,
            $world,
            "lookout:plugin/types" => super::probe::lookout::plugin::types,
            "lookout:plugin/host" => super::probe::lookout::plugin::host,
            "lookout:plugin/icmp" => super::probe::lookout::plugin::icmp,
            "lookout:plugin/filesystem-stats" => super::probe::lookout::plugin::filesystem_stats
        );
    };
}

sharing_world_bindings!(exporter, "lookout:plugin/exporter");
sharing_world_bindings!(detector, "lookout:plugin/detector");
sharing_world_bindings!(notifier, "lookout:plugin/notifier");

pub use probe::lookout::plugin::{filesystem_stats, host, icmp, types};
