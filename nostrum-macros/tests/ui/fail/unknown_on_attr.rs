use nostrum_core::prelude::*;

struct Bot;

#[consumer]
impl Bot {
    #[on(MESAGE_CREATE)]
    async fn log(&self, msg: Message) {
        let _ = msg;
    }
}

fn main() {}
