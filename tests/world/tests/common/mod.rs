//! Minimal blocking DNS and HTTPS clients for testing the world's servers.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

pub const TIMEOUT: Duration = Duration::from_secs(5);

pub fn query_message(name: &str, rtype: RecordType, edns: bool) -> Message {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    m
}

/// Sends one query over UDP; `None` if no answer within `wait`.
pub fn udp_query(server: SocketAddr, msg: &Message, wait: Duration) -> Option<Message> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(wait)).unwrap();
    sock.send_to(&msg.to_vec().unwrap(), server).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = sock.recv_from(&mut buf).ok()?;
    Some(Message::from_vec(&buf[..n]).unwrap())
}

/// Sends raw bytes over UDP; returns the raw reply, if any.
pub fn udp_raw(server: SocketAddr, bytes: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(wait)).unwrap();
    sock.send_to(bytes, server).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = sock.recv_from(&mut buf).ok()?;
    Some(buf[..n].to_vec())
}

/// Sends queries over one TCP connection; returns the replies in order.
pub fn tcp_queries(server: SocketAddr, msgs: &[Message]) -> Vec<Message> {
    let mut s = TcpStream::connect(server).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut out = Vec::new();
    for msg in msgs {
        let bytes = msg.to_vec().unwrap();
        s.write_all(&u16::try_from(bytes.len()).unwrap().to_be_bytes())
            .unwrap();
        s.write_all(&bytes).unwrap();
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut reply).unwrap();
        out.push(Message::from_vec(&reply).unwrap());
    }
    out
}

/// The TXT RRs of the answer, each as its list of character-strings.
pub fn txt_strings(m: &Message) -> Vec<Vec<Vec<u8>>> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(t.txt_data.iter().map(|s| s.to_vec()).collect()),
            _ => None,
        })
        .collect()
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body as received (chunked framing removed when chunked).
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Opens TLS to `127.0.0.1:port` with `sni`.
pub fn tls_connect(
    port: u16,
    sni: &str,
    config: Arc<ClientConfig>,
) -> io::Result<StreamOwned<ClientConnection, TcpStream>> {
    let sock = TcpStream::connect(("127.0.0.1", port))?;
    sock.set_read_timeout(Some(TIMEOUT))?;
    sock.set_write_timeout(Some(TIMEOUT))?;
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
    let mut tls = StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// `GET path` on `127.0.0.1:port` with `sni` (also sent as Host), read to EOF.
pub fn https_get(
    port: u16,
    sni: &str,
    path: &str,
    config: Arc<ClientConfig>,
) -> io::Result<Response> {
    let mut tls = tls_connect(port, sni, config)?;
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: {sni}\r\nUser-Agent: testworld-test\r\n\r\n"
    )?;
    tls.flush()?;
    let mut raw = Vec::new();
    tls.read_to_end(&mut raw)?;
    Ok(parse_response(&raw))
}

pub fn parse_response(raw: &[u8]) -> Response {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("complete head");
    let head = String::from_utf8(raw[..end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v == "chunked");
    if chunked {
        body = dechunk(&body);
    }
    Response {
        status: status.parse().unwrap(),
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&data[..eol]).unwrap(), 16).unwrap();
        data = &data[eol + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        assert_eq!(&data[size..size + 2], b"\r\n");
        data = &data[size + 2..];
    }
}
