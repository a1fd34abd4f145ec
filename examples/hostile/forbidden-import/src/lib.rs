//! `forbidden-import`: a component of the right world that also imports
//! `wasi:keyvalue/store`, an interface Sluice does not provide (a guest keeps data in
//! Sluice's state instead). The host must refuse it at load time, naming the import,
//! rather than fail on first use. The call sits on the exported action's path, so the
//! linker cannot drop it and the import survives into the built component.
//!
//! (This guest used to import `wasi:sockets`; sockets are now linked, inert, for the
//! JavaScript and Python runtimes, and `inert-wasi` checks that they refuse every use.)

use hostile_support::{Data, Error, Output};

wit_bindgen::generate!({
    inline: r#"
        package hostile:forbidden;

        world imports {
            import wasi:keyvalue/store@0.2.0-draft;
        }

        package wasi:keyvalue@0.2.0-draft {
            interface store {
                get: func(key: string) -> option<list<u8>>;
            }
        }
    "#,
    world: "hostile:forbidden/imports",
    generate_all,
});

hostile_support::hostile_connector!(
    key: "forbidden-import",
    description: "Reads from wasi:keyvalue, which Sluice does not provide.",
    run: run,
);

fn run(_input: String) -> Result<Output, Error> {
    let found = wasi::keyvalue::store::get("secret").is_some();
    Ok(Output {
        data: Data::Json(found.to_string()),
        content_type: None,
        status: None,
        headers: Vec::new(),
        branch: None,
    })
}
