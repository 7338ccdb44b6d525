use nostrum_core::prelude::*;

struct Bot;

#[consumer]
impl Bot {
    async fn on_message_create(&self, ctx: Context, msg: Message, extra: u32) {
        let _ = (ctx, msg, extra);
    }

    async fn on_typing_start(&self) {}
}

fn main() {}
