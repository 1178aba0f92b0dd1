//! A hook component built against a newer, incompatible `hookhost:hooks`.

wit_bindgen::generate!({
    inline: r#"
        package hookhost:hooks@0.2.0;
        interface hooks {
            services: func() -> list<string>;
        }
        world role-hooks {
            export hooks;
        }
    "#,
});

struct Future;

impl exports::hookhost::hooks::hooks::Guest for Future {
    fn services() -> Vec<String> {
        vec!["init".into()]
    }
}

export!(Future);
