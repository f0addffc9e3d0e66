//! `--requirepass` and AUTH / HELLO AUTH as clients see them, with Redis's exact error texts.
//! Every scenario runs against `tandem node --requirepass` and `redis-server --requirepass`
//! with the same expectations.

mod common;
use common::compare::on_both_with;
use common::{Raw, Resp};

const NOAUTH: &str = "NOAUTH Authentication required.";
const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

fn ok() -> Resp {
    Resp::Simple("OK".into())
}

#[test]
fn commands_need_auth_when_requirepass_is_set() {
    on_both_with(&["--requirepass", "s3cret"], |who, p| {
        let mut c = Raw::connect(p.port);
        assert_eq!(c.cmd(&["PING"]).err_text(), NOAUTH, "{who}");
        assert_eq!(c.cmd(&["GET", "k"]).err_text(), NOAUTH, "{who}");
        assert_eq!(c.cmd(&["SET", "k", "v"]).err_text(), NOAUTH, "{who}");
        assert_eq!(c.cmd(&["SUBSCRIBE", "ch"]).err_text(), NOAUTH, "{who}");
        // Inside MULTI the rejection also aborts the transaction... but MULTI itself needs
        // auth, so it is simply refused.
        assert_eq!(c.cmd(&["MULTI"]).err_text(), NOAUTH, "{who}");
        // Arity is checked before authentication, as in Redis.
        assert_eq!(
            c.cmd(&["GET"]).err_text(),
            "ERR wrong number of arguments for 'get' command",
            "{who}"
        );
        // Wrong passwords.
        assert_eq!(c.cmd(&["AUTH", "nope"]).err_text(), WRONGPASS, "{who}");
        assert_eq!(
            c.cmd(&["AUTH", "default", "nope"]).err_text(),
            WRONGPASS,
            "{who}"
        );
        assert_eq!(
            c.cmd(&["AUTH", "someone", "s3cret"]).err_text(),
            WRONGPASS,
            "{who}"
        );
        assert_eq!(
            c.cmd(&["AUTH", "a", "b", "c"]).err_text(),
            "ERR syntax error",
            "{who}"
        );
        assert_eq!(c.cmd(&["PING"]).err_text(), NOAUTH, "{who}");
        // The right one.
        assert_eq!(c.cmd(&["AUTH", "s3cret"]), ok(), "{who}");
        assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()), "{who}");
        assert_eq!(c.cmd(&["SET", "k", "v"]), ok(), "{who}");
        // A later wrong AUTH does not log the connection out.
        assert_eq!(c.cmd(&["AUTH", "nope"]).err_text(), WRONGPASS, "{who}");
        assert_eq!(c.cmd(&["GET", "k"]), Resp::bulk("v"), "{who}");

        let mut d = Raw::connect(p.port);
        assert_eq!(d.cmd(&["AUTH", "default", "s3cret"]), ok(), "{who}");
        assert_eq!(d.cmd(&["GET", "k"]), Resp::bulk("v"), "{who}");
        // RESET logs out.
        assert_eq!(d.cmd(&["RESET"]), Resp::Simple("RESET".into()), "{who}");
        assert_eq!(d.cmd(&["GET", "k"]).err_text(), NOAUTH, "{who}");
        // QUIT works without auth.
        let mut e = Raw::connect(p.port);
        assert_eq!(e.cmd(&["QUIT"]), ok(), "{who}");
    });
}

#[test]
fn hello_with_auth() {
    on_both_with(&["--requirepass", "s3cret"], |who, p| {
        let mut c = Raw::connect(p.port);
        assert_eq!(
            c.cmd(&["HELLO", "3"]).err_text(),
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
            "{who}"
        );
        assert_eq!(
            c.cmd(&["HELLO", "3", "AUTH", "default", "wrong"])
                .err_text(),
            WRONGPASS,
            "{who}"
        );
        // Still RESP2 and unauthenticated.
        assert_eq!(c.cmd(&["GET", "k"]).err_text(), NOAUTH, "{who}");
        let r = c.cmd(&["HELLO", "3", "AUTH", "default", "s3cret"]);
        assert!(matches!(&r, Resp::Map(m) if m.len() == 7), "{who}: {r:?}");
        assert_eq!(c.cmd(&["GET", "missing"]), Resp::Null, "{who}: RESP3 null");
        // HELLO AUTH with SETNAME in the same call.
        let mut d = Raw::connect(p.port);
        let r = d.cmd(&["HELLO", "2", "AUTH", "default", "s3cret", "SETNAME", "app"]);
        assert!(
            matches!(&r, Resp::Array(a) if a.len() == 14),
            "{who}: {r:?}"
        );
        assert_eq!(d.cmd(&["CLIENT", "GETNAME"]), Resp::bulk("app"), "{who}");
        assert_eq!(d.cmd(&["GET", "missing"]), Resp::NullBulk, "{who}");
    });
}

#[test]
fn auth_without_a_configured_password() {
    on_both_with(&[], |who, p| {
        let mut c = Raw::connect(p.port);
        assert_eq!(
            c.cmd(&["AUTH", "anything"]).err_text(),
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            "{who}"
        );
        // The default user has no password: with a username any password is accepted.
        assert_eq!(c.cmd(&["AUTH", "default", "anything"]), ok(), "{who}");
        assert_eq!(
            c.cmd(&["AUTH", "other", "anything"]).err_text(),
            WRONGPASS,
            "{who}"
        );
        assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()), "{who}");
        assert!(matches!(
            c.cmd(&["HELLO", "3", "AUTH", "default", "x"]),
            Resp::Map(_)
        ));
    });
}

#[test]
fn redis_rs_authenticates_from_the_url() {
    on_both_with(&["--requirepass", "s3cret"], |who, p| {
        let url = format!("redis://:s3cret@127.0.0.1:{}/", p.port);
        let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
        let pong: String = redis::cmd("PING").query(&mut c).unwrap();
        assert_eq!(pong, "PONG", "{who}");
        let url = format!(
            "redis://default:s3cret@127.0.0.1:{}/?protocol=resp3",
            p.port
        );
        let mut c = redis::Client::open(url)
            .unwrap()
            .get_connection()
            .unwrap_or_else(|e| panic!("{who}: RESP3 connection with password: {e}"));
        let pong: String = redis::cmd("PING").query(&mut c).unwrap();
        assert_eq!(pong, "PONG", "{who}");
        // Without the password the first command fails with NOAUTH.
        let mut anon = p.conn();
        let err = redis::cmd("PING").query::<String>(&mut anon).unwrap_err();
        assert_eq!(err.code(), Some("NOAUTH"), "{who}: {err}");
        // A wrong password in the URL fails at connect time.
        let url = format!("redis://:wrong@127.0.0.1:{}/", p.port);
        let err = redis::Client::open(url)
            .unwrap()
            .get_connection()
            .err()
            .expect("connecting with a wrong password must fail");
        assert_eq!(
            err.kind(),
            redis::ErrorKind::AuthenticationFailed,
            "{who}: {err}"
        );
    });
}
