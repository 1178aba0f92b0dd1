//! Claims `hookhost:hooks@0.1.0` but exports only part of `hooks`.

wit_bindgen::generate!({
    inline: r#"
        package hookhost:hooks@0.1.0;
        interface hooks {
            services: func() -> list<string>;
        }
        world role-hooks {
            export hooks;
        }
    "#,
});

struct Partial;

impl exports::hookhost::hooks::hooks::Guest for Partial {
    fn services() -> Vec<String> {
        vec!["init".into()]
    }
}

export!(Partial);
