use nostrum_core::prelude::*;

struct Pings;

#[consumer]
impl Pings {
    async fn on_message_create(&self, _msg: Message) {}
}

#[derive(Consumer)]
struct Bot {
    pings: Pings,
    config: String,
}

fn main() {}
