//! Connection-level behaviour through a real client: PING, ECHO, SELECT, unknown commands.

mod common;
use common::Proc;

#[test]
fn ping_echo_select_and_errors() {
    let node = Proc::node(&[]);
    let mut c = node.conn();
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    let echo: String = redis::cmd("ECHO").arg("hi there").query(&mut c).unwrap();
    assert_eq!(echo, "hi there");
    let ok: String = redis::cmd("SELECT").arg(3).query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    let err = redis::cmd("SELECT")
        .arg(99)
        .query::<String>(&mut c)
        .unwrap_err();
    assert!(
        err.to_string().contains("DB index is out of range"),
        "{err}"
    );
    let err = redis::cmd("NOSUCHCMD")
        .arg("a")
        .query::<String>(&mut c)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown command 'NOSUCHCMD', with args beginning with: 'a'"),
        "{err}"
    );
}
