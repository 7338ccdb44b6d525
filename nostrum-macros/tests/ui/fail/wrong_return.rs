use nostrum_core::prelude::*;

struct Bot;

#[consumer]
impl Bot {
    async fn on_message_create(&self, msg: Message) -> u32 {
        msg.content.len() as u32
    }
}

fn main() {}
