//! Byte-exact interoperation with a C program that calls `msgsnd`/`msgrcv` itself,
//! compiled by the test with `cc`. The C side fills its struct with 0x5a before setting
//! the fields, so padding bytes are visible, and prints the payload bytes (everything
//! after `long mtype`) in hex; ipcx must see exactly those bytes, and the reverse.

use std::process::Command;
use std::time::Duration;

use ipcx::{OpenOptions, Receiver, Sender};
use ipcx_tests::{spawn, unique_key, TestDir};

const C_PROGRAM: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/ipc.h>
#include <sys/msg.h>

struct rec { long mtype; char text[256]; char name[16]; int seq; };

static void hex(const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
    printf("\n");
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    int id = msgget((key_t)strtol(argv[2], 0, 0), 0);
    if (id < 0) { perror("msgget"); return 1; }
    struct rec r;
    size_t payload = sizeof r - sizeof(long);
    printf("layout %zu %zu %zu %zu\n", payload, offsetof(struct rec, text) - sizeof(long),
           offsetof(struct rec, name) - sizeof(long), offsetof(struct rec, seq) - sizeof(long));
    if (strcmp(argv[1], "send") == 0) {
        memset(&r, 0x5a, sizeof r);
        r.mtype = 4;
        strcpy(r.text, "hello from C");
        strcpy(r.name, "cprog");
        r.seq = 42;
        if (msgsnd(id, &r, payload, 0) < 0) { perror("msgsnd"); return 1; }
        hex((char *)&r + sizeof(long), payload);
    } else {
        memset(&r, 0, sizeof r);
        ssize_t n = msgrcv(id, &r, payload, 5, 0);
        if (n < 0) { perror("msgrcv"); return 1; }
        printf("got %zd %ld %d %.16s|%.256s\n", n, r.mtype, r.seq, r.name, r.text);
        hex((char *)&r + sizeof(long), (size_t)n);
    }
    return 0;
}
"#;

fn compile(dir: &TestDir) -> Option<std::path::PathBuf> {
    let src = dir.join("peer.c");
    let exe = dir.join("peer");
    std::fs::write(&src, C_PROGRAM).unwrap();
    match Command::new("cc").arg("-O1").arg("-o").arg(&exe).arg(&src).output() {
        Err(e) => {
            eprintln!("skipped: no C compiler (`cc`: {e})");
            None
        }
        Ok(out) => {
            assert!(out.status.success(), "cc failed: {}", String::from_utf8_lossy(&out.stderr));
            Some(exe)
        }
    }
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// (payload size, offset of text, name, seq) as the C compiler laid the struct out.
fn layout(line: &str) -> [usize; 4] {
    let v: Vec<usize> =
        line.strip_prefix("layout ").unwrap().split(' ').map(|n| n.parse().unwrap()).collect();
    [v[0], v[1], v[2], v[3]]
}

#[test]
fn a_c_struct_sent_with_msgsnd_arrives_byte_exact() {
    let dir = TestDir::new("mq-c");
    let Some(exe) = compile(&dir) else { return };
    let key = unique_key();
    let addr = format!("sysv-mq:{key}");
    // Our receiver selects type 4 through the common API, and creates (and removes) the queue.
    let mut rx =
        ipcx::open_receiver_with(&format!("{addr}?type=4"), &OpenOptions::new().create(true))
            .unwrap();
    let out = spawn(Command::new(&exe).args(["send", &key.to_string()]))
        .wait_within(Duration::from_secs(20));
    assert!(out.status.success(), "C sender: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut lines = stdout.lines();
    let [size, text, name, seq] = layout(lines.next().unwrap());
    let c_bytes = unhex(lines.next().unwrap());
    assert_eq!(c_bytes.len(), size);
    let got = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(rx.last_label(), Some(ipcx::Label::Type(4)));
    assert_eq!(got, c_bytes, "payload differs from the C struct's bytes");
    // And it is the struct we expect: fields at the C offsets, padding as C left it.
    if cfg!(target_pointer_width = "64") {
        assert_eq!((size, text, name, seq), (280, 0, 256, 272), "the LP64 layout");
    }
    assert_eq!(&got[..13], b"hello from C\0");
    assert_eq!(got[13], 0x5a);
    assert_eq!(&got[name..name + 6], b"cprog\0");
    assert_eq!(i32::from_ne_bytes(got[seq..seq + 4].try_into().unwrap()), 42);
    assert_eq!(&got[seq + 4..], &[0x5a; 4], "tail padding");
    drop(rx);
    assert!(ipcx::sysv_mq::Queue::open(ipcx::address::SysvKey::Key(key)).is_err());
}

#[test]
fn bytes_sent_by_ipcx_arrive_in_a_c_struct_with_msgrcv() {
    let dir = TestDir::new("mq-c");
    let Some(exe) = compile(&dir) else { return };
    let key = unique_key();
    if !cfg!(target_pointer_width = "64") {
        eprintln!("skipped: the payload below is laid out for LP64");
        return;
    }
    // Lay the struct out as C does (280 payload bytes on LP64), padding 0x77.
    let mut payload = vec![0x77u8; 280];
    payload[..16].copy_from_slice(b"hello from Rust\0");
    payload[256..261].copy_from_slice(b"ipcx\0");
    payload[272..276].copy_from_slice(&7i32.to_ne_bytes());
    let mut tx =
        ipcx::open_sender_with(&format!("sysv-mq:{key}?type=5"), &OpenOptions::new().create(true))
            .unwrap();
    // A message of another type first: the C side selects type 5 and must skip it.
    let mut q = ipcx::sysv_mq::Queue::open(ipcx::address::SysvKey::Key(key)).unwrap();
    q.send(3, b"a type-3 message the C side must skip").unwrap();
    tx.send(&payload).unwrap();
    let out = spawn(Command::new(&exe).args(["recv", &key.to_string()]))
        .wait_within(Duration::from_secs(20));
    assert!(out.status.success(), "C receiver: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut lines = stdout.lines();
    assert_eq!(layout(lines.next().unwrap()), [280, 0, 256, 272]);
    assert_eq!(lines.next().unwrap(), "got 280 5 7 ipcx|hello from Rust");
    assert_eq!(unhex(lines.next().unwrap()), payload);
    // The type-3 message is still there.
    assert_eq!(q.status().unwrap().messages, 1);
    drop((q, tx));
    assert!(ipcx::sysv_mq::Queue::open(ipcx::address::SysvKey::Key(key)).is_err());
}
