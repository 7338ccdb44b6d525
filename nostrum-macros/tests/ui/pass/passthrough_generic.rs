// Methods without `on_` pass through untouched, and generic impl blocks work.
use nostrum_core::prelude::*;

struct Bot<T> {
    prefix: T,
}

#[consumer]
impl<T: AsRef<str> + Send + Sync + 'static> Bot<T> {
    async fn on_message_create(&self, msg: Message) {
        let _ = self.is_command(&msg.content);
    }

    fn is_command(&self, content: &str) -> bool {
        content.starts_with(self.prefix.as_ref())
    }

    pub fn new(prefix: T) -> Self {
        Self { prefix }
    }

    async fn helper(&self, x: u32, y: u32) -> u32 {
        x + y
    }
}

fn main() {
    let bot = Bot::new("!");
    assert!(bot.is_command("!ping"));
    assert!(!bot.is_command("ping"));
    let _ = bot.helper(1, 2);
    assert!(<Bot<&'static str> as Consumer>::EVENTS.contains(EventKind::MessageCreate));
    assert_eq!(<Bot<String> as Consumer>::EVENTS.len(), 1);
}
