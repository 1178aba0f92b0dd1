//! A valid component of another world: it must be refused as such.

wit_bindgen::generate!({
    inline: r#"
        package acme:widgets@1.0.0;
        interface widget {
            frob: func(x: u32) -> u32;
        }
        world widgets {
            export widget;
        }
    "#,
});

struct Widget;

impl exports::acme::widgets::widget::Guest for Widget {
    fn frob(x: u32) -> u32 {
        x + 1
    }
}

export!(Widget);
