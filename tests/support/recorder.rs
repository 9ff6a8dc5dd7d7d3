//! A listener that records what it is sent and answers 502: where credentials must never go.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

pub struct Recorder {
    pub port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    pub fn start() -> Recorder {
        Recorder::answering("HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into())
    }

    /// A recorder that answers every request with `response` (a whole HTTP/1.1 response).
    pub fn answering(response: String) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                let mut head = String::new();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                seen.lock().unwrap().push(head);
                let _ = stream.write_all(response.as_bytes());
            }
        });
        Recorder { port, requests }
    }

    /// `http://localhost:PORT`: another host name than the registries' 127.0.0.1.
    pub fn origin(&self) -> String {
        format!("http://localhost:{}", self.port)
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Requests that carried an `Authorization` header.
    pub fn authorized(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.to_ascii_lowercase().contains("\nauthorization:"))
            .count()
    }
}
