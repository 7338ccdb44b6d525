//! A throwaway `redis-server` for tests and examples: its own directory, a Unix socket and no TCP
//! port at all, killed on drop.

use std::{
    io,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A `redis-server` child process listening only on a Unix socket in a fresh directory.
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// let server = nostrum_redis::testing::RedisServer::start()?;
/// let client = redis::Client::open(server.url()).unwrap();
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    dir: PathBuf,
    socket: PathBuf,
}

impl RedisServer {
    /// Starts `redis-server` (from `PATH`, or `$REDIS_SERVER`) and waits until its socket answers.
    ///
    /// # Errors
    /// When `redis-server` is not installed (`io::ErrorKind::NotFound`) or does not come up
    /// within 10 s.
    pub fn start() -> io::Result<Self> {
        let program = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned());
        let dir = std::env::temp_dir().join(format!(
            "nostrum-redis-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir)?;
        let socket = dir.join("redis.sock");
        let child = Command::new(program)
            .arg("--port")
            .arg("0")
            .arg("--unixsocket")
            .arg(&socket)
            .arg("--unixsocketperm")
            .arg("700")
            .arg("--dir")
            .arg(&dir)
            .arg("--save")
            .arg("")
            .arg("--appendonly")
            .arg("no")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut server = Self { child, dir, socket };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::os::unix::net::UnixStream::connect(&server.socket).is_ok() {
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                return Err(io::Error::other(format!("redis-server exited: {status}")));
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "redis-server did not open its socket within 10 s",
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts a server, or prints why not and returns `None` when `redis-server` is not installed
    /// (tests skip then; `.ci/run` installs it, so CI never skips).
    pub fn start_or_skip(test: &str) -> Option<Self> {
        match Self::start() {
            Ok(server) => Some(server),
            Err(err)
                if err.kind() == io::ErrorKind::NotFound && std::env::var_os("CI").is_none() =>
            {
                eprintln!(
                    "{test}: skipped, redis-server is not installed (apt-get install redis-server)"
                );
                None
            }
            Err(err) => panic!("{test}: could not start redis-server: {err}"),
        }
    }

    /// The URL to connect to (`redis+unix:///...`).
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    /// The socket's path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
