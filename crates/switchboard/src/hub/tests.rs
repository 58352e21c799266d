use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use super::test_support::{UNLIMITED, Verbatim, connect, frames, hub, metrics_for};
use super::*;
use crate::identity::Identity;

fn delivery(payload: &str) -> Delivery {
    Delivery::from_raw_json(Bytes::copy_from_slice(payload.as_bytes()))
}

fn user(id: &str) -> Identity {
    Identity::user(id.into(), format!("{id}@example.com"), vec![])
}

#[test]
fn each_target_reaches_exactly_its_connections() {
    let hub = hub(UNLIMITED);
    let ada = connect(&hub, 0, user("ada"), &["room"]);
    let bob = connect(&hub, 0, user("bob"), &["room", "side"]);
    let anon = connect(&hub, 0, Identity::public(), &[]);

    assert_eq!(
        hub.deliver(&Target::Users(vec!["n::ada".into()]), &delivery("u")),
        1
    );
    assert_eq!(
        hub.deliver(
            &Target::Channels(vec!["room".into(), "side".into()]),
            &delivery("c")
        ),
        2
    );
    let anon_id = anon.client_id().to_string();
    assert_eq!(
        hub.deliver(
            &Target::Clients(vec![anon_id.clone(), anon_id]),
            &delivery("k")
        ),
        1
    );
    assert_eq!(hub.deliver(&Target::Everyone, &delivery("e")), 3);
    assert_eq!(
        hub.deliver(&Target::Channels(vec!["nobody".into()]), &delivery("x")),
        0
    );

    assert_eq!(frames(&ada), vec!["u", "c", "e"]);
    assert_eq!(frames(&bob), vec!["c", "e"]);
    assert_eq!(frames(&anon), vec!["k", "e"]);
}

#[test]
fn an_excluded_connection_is_skipped_on_this_node_only() {
    let hub = hub(UNLIMITED);
    let sender = connect(&hub, 0, Identity::public(), &["room"]);
    let other = connect(&hub, 0, Identity::public(), &["room"]);
    let send = delivery("m").excluding(sender.key());
    assert_eq!(
        hub.deliver(&Target::Channels(vec!["room".into()]), &send),
        1
    );
    assert!(!hub.deliver_to_connection(&sender, &send));
    assert_eq!(frames(&sender), Vec::<String>::new());
    assert_eq!(frames(&other), vec!["m"]);
    // Another node's copy excludes no one there.
    assert_eq!(send.relayed().excluded(), None);
}

#[test]
fn a_frame_is_encoded_once_per_dialect_and_channel_and_shared() {
    let hub = hub(UNLIMITED);
    let verbatim: Vec<_> = (0..3)
        .map(|_| connect(&hub, 0, Identity::public(), &["a"]))
        .collect();
    let naming: Vec<_> = (0..3)
        .map(|_| connect(&hub, 1, Identity::public(), &["a"]))
        .collect();
    let other = connect(&hub, 1, Identity::public(), &["b"]);
    hub.deliver(
        &Target::Channels(vec!["a".into(), "b".into()]),
        &delivery("{}"),
    );
    let first: Vec<Bytes> = verbatim
        .iter()
        .map(|c| c.outbound.drain().frames[0].clone())
        .collect();
    let named: Vec<Bytes> = naming
        .iter()
        .map(|c| c.outbound.drain().frames[0].clone())
        .collect();
    assert!(
        first.iter().all(|f| f.as_ptr() == first[0].as_ptr()),
        "verbatim frames shared"
    );
    assert!(
        named.iter().all(|f| f.as_ptr() == named[0].as_ptr()),
        "channel frames shared"
    );
    assert_eq!(&named[0][..], b"a:{}");
    assert_eq!(frames(&other), vec!["b:{}"]);
}

#[test]
fn limits_are_taken_atomically_with_registration() {
    let hub = hub(ConnectionLimits {
        total: 3,
        per_user: 2,
    });
    let one = connect(&hub, 0, user("ada"), &[]);
    let _two = connect(&hub, 0, user("ada"), &[]);
    let register = |identity: Identity| {
        hub.register(Registration {
            client_id: Arc::from(crate::ids::new_client_id()),
            dialect: Hub::dialect_id(0),
            identity,
            channels: vec![],
            namespace: None,
            greeting: vec![],
            shared_client_id: false,
        })
    };
    assert_eq!(
        register(user("ada")).err(),
        Some(RegisterError::Full(crate::close_code::TOO_MANY_FOR_USER))
    );
    let _three = register(Identity::public()).expect("third connection fits");
    assert_eq!(
        register(Identity::public()).err(),
        Some(RegisterError::Full(crate::close_code::TRY_AGAIN_LATER))
    );
    hub.unregister(&one);
    assert!(register(user("ada")).is_ok(), "a freed slot is reusable");
    assert_eq!(hub.user_connection_count("ada"), 2);
}

#[test]
fn set_identity_moves_between_user_indexes_and_respects_the_user_limit() {
    let hub = hub(ConnectionLimits {
        total: 10,
        per_user: 1,
    });
    let anon = connect(&hub, 0, Identity::public(), &[]);
    let _ada = connect(&hub, 0, user("ada"), &[]);
    assert!(hub.set_identity(&anon, user("ada")).is_err());
    assert_eq!(
        hub.user_connection_count(crate::identity::PUBLIC_USER_ID),
        1
    );
    hub.set_identity(&anon, user("bob")).expect("bob has room");
    assert_eq!(
        hub.user_connection_count(crate::identity::PUBLIC_USER_ID),
        0
    );
    assert_eq!(hub.user_connection_count("bob"), 1);
}

#[test]
fn an_unregistered_connection_is_not_indexed_again() {
    let hub = hub(UNLIMITED);
    let conn = connect(&hub, 0, user("ada"), &[]);
    hub.unregister(&conn);
    // A revocation arriving after the connection ended must not re-add it anywhere.
    hub.set_identity(&conn, Identity::public())
        .expect("no limit");
    assert_eq!(
        hub.user_connection_count(crate::identity::PUBLIC_USER_ID),
        0
    );
    assert_eq!(hub.user_connection_count("ada"), 0);
}

#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<String>>);

impl ChannelObserver for Recorder {
    fn on_channel_event(&self, event: &ChannelEvent<'_>) {
        let line = match event {
            ChannelEvent::Joined { channel, first, .. } => format!("join {channel} first={first}"),
            ChannelEvent::Left { channel, last, .. } => format!("leave {channel} last={last}"),
        };
        self.0.lock().push(line);
    }
}

#[test]
fn the_channel_observer_sees_first_and_last_members() {
    let hub = hub(UNLIMITED);
    let recorder = Arc::new(Recorder::default());
    hub.observe_channels(recorder.clone());
    let a = connect(&hub, 0, Identity::public(), &["room"]);
    let b = connect(&hub, 0, Identity::public(), &[]);
    assert_eq!(hub.subscribe(&b, Arc::from("room")), 2);
    assert_eq!(
        hub.subscribe(&b, Arc::from("room")),
        2,
        "joining twice changes nothing"
    );
    assert_eq!(hub.unsubscribe(&b, "room"), 1);
    hub.unregister(&a);
    assert_eq!(hub.channel_size("room"), 0);
    assert_eq!(
        *recorder.0.lock(),
        vec![
            "join room first=true",
            "join room first=false",
            "leave room last=false",
            "leave room last=true",
        ]
    );
}

#[test]
fn metrics_count_every_recipient_of_a_fanout() {
    let hub = hub(UNLIMITED);
    let members: Vec<_> = (0..4)
        .map(|_| connect(&hub, 0, Identity::public(), &["r"]))
        .collect();
    hub.deliver(&Target::Channels(vec!["r".into()]), &delivery("1234"));
    let rendered = hub.metrics().render();
    assert!(
        rendered.contains("switchboard_deliveries_total 4"),
        "{rendered}"
    );
    assert!(
        rendered.contains("switchboard_outbound_queued_bytes 16"),
        "{rendered}"
    );
    drop(members);
}

/// Carries deliveries meant for the dialect named `mine` (and unrestricted ones).
#[derive(Debug)]
struct Mine;

impl FrameEncoder for Mine {
    fn dialect(&self) -> &'static str {
        "mine"
    }

    fn carries(&self, delivery: &Delivery) -> bool {
        delivery
            .audience()
            .is_none_or(|audience| audience == "mine")
    }

    fn encode(&self, delivery: &Delivery, _route: &Route<'_>) -> Bytes {
        delivery.payload().clone()
    }
}

#[test]
fn a_delivery_for_one_dialect_reaches_no_other_and_named_clients_are_skipped() {
    let encoders: Vec<Arc<dyn FrameEncoder>> = vec![Arc::new(Verbatim), Arc::new(Mine)];
    let metrics = metrics_for(&encoders);
    let hub = Arc::new(Hub::new(
        encoders,
        QueueBounds {
            messages: 100,
            bytes: 1 << 20,
        },
        UNLIMITED,
        metrics,
    ));
    let other = connect(&hub, 0, Identity::public(), &["room"]);
    let mine = connect(&hub, 1, Identity::public(), &["room"]);
    let skipped = connect(&hub, 1, Identity::public(), &["room"]);
    let room = Target::Channels(vec!["room".into()]);
    let only_mine = delivery("p").only_for("mine");
    assert_eq!(hub.deliver(&room, &only_mine), 2);
    assert!(!hub.deliver_to_connection(&other, &only_mine));
    assert_eq!(frames(&other), Vec::<String>::new());
    assert_eq!(frames(&mine), vec!["p"]);
    assert_eq!(frames(&skipped), vec!["p"]);
    // Client ids are the same on every node, so a relayed copy still skips them.
    let all_but = delivery("q").excluding_clients([skipped.client_id().clone()]);
    assert_eq!(hub.deliver(&room, &all_but.relayed()), 2);
    assert_eq!(frames(&skipped), Vec::<String>::new());
    assert_eq!(frames(&other), vec!["q"]);
    assert_eq!(frames(&mine), vec!["q"]);
    assert_eq!(only_mine.relayed().audience(), Some("mine"));
}

#[test]
fn sockets_sharing_a_client_id_each_get_a_send_and_leave_alone() {
    let hub = hub(UNLIMITED);
    let register = || {
        hub.register(Registration {
            client_id: Arc::from("tab"),
            dialect: Hub::dialect_id(0),
            identity: Identity::public(),
            channels: vec![],
            namespace: Some(Arc::from("chat")),
            greeting: vec![],
            shared_client_id: true,
        })
        .expect("registered")
    };
    let first = register();
    let second = register();
    assert_eq!(hub.connection_count(), 2);
    assert_eq!(hub.connections_of_client("tab").len(), 2);
    let delivery = Delivery::from_raw_json(Bytes::from_static(b"1"));
    assert_eq!(
        hub.deliver(
            &Target::Clients(vec!["tab".into(), "tab".into()]),
            &delivery
        ),
        2
    );
    assert_eq!(hub.deliver(&Target::Namespace("chat".into()), &delivery), 2);
    assert_eq!(frames(&first), ["1", "1"]);
    assert_eq!(frames(&second), ["1", "1"]);

    hub.unregister(&first);
    assert_eq!(hub.connection_count(), 1);
    assert_eq!(hub.connections_of_client("tab").len(), 1);
    assert_eq!(
        hub.deliver(&Target::Clients(vec!["tab".into()]), &delivery),
        1
    );
    assert_eq!(frames(&second), ["1"]);
    // A stale socket closing twice removes nothing more.
    hub.unregister(&first);
    assert_eq!(hub.connection_count(), 1);
    hub.unregister(&second);
    assert_eq!(hub.connection_count(), 0);
    assert!(hub.connection("tab").is_none());
}
