use std::rc::Rc;

use nostrum_core::prelude::*;

struct Bot;

async fn work() {}

#[consumer]
impl Bot {
    async fn on_message_create(&self, msg: Message) {
        let content = Rc::new(msg.content);
        work().await;
        let _ = content;
    }
}

fn main() {}
