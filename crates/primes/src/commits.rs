//! Which offset may be committed. Jobs of one partition finish out of order (bounded
//! concurrency), but a commit covers everything before it on the partition, so only the
//! end of the finished prefix is committed: a job still running is never skipped over.

use std::collections::{BTreeMap, HashMap};

use floodgate_bus::Message;

#[derive(Default)]
pub struct Commits {
    /// (topic, partition) → offset → the message once finished, None while running.
    parts: HashMap<(String, i32), BTreeMap<i64, Option<Message>>>,
}

impl Commits {
    pub fn start(&mut self, msg: &Message) {
        self.parts
            .entry((msg.topic.clone(), msg.partition))
            .or_default()
            .insert(msg.offset, None);
    }

    /// Marks `msg` finished; returns the message to commit when the finished prefix grew.
    pub fn finish(&mut self, msg: Message) -> Option<Message> {
        let id = (msg.topic.clone(), msg.partition);
        let part = self.parts.get_mut(&id)?;
        // Unknown offsets (a duplicate already finished) change nothing.
        let offset = msg.offset;
        *part.get_mut(&offset)? = Some(msg);
        let mut last = None;
        while let Some(first) = part.first_entry() {
            if first.get().is_none() {
                break;
            }
            last = first.remove();
        }
        if part.is_empty() {
            self.parts.remove(&id);
        }
        last
    }

    /// Jobs started and not yet finished.
    pub fn running(&self) -> usize {
        self.parts
            .values()
            .flat_map(|p| p.values())
            .filter(|m| m.is_none())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(partition: i32, offset: i64) -> Message {
        Message {
            topic: "t".into(),
            partition,
            offset,
            key: None,
            payload: Default::default(),
            headers: Vec::new(),
        }
    }

    fn committed(c: &mut Commits, partition: i32, offset: i64) -> Option<i64> {
        c.finish(msg(partition, offset)).map(|m| m.offset)
    }

    #[test]
    fn commits_only_the_finished_prefix() {
        let mut c = Commits::default();
        for off in 0..4 {
            c.start(&msg(0, off));
        }
        c.start(&msg(1, 7));
        assert_eq!(committed(&mut c, 0, 2), None, "0 and 1 still run");
        assert_eq!(committed(&mut c, 0, 0), Some(0));
        assert_eq!(
            committed(&mut c, 1, 7),
            Some(7),
            "partitions are independent"
        );
        assert_eq!(c.running(), 2);
        assert_eq!(
            committed(&mut c, 0, 1),
            Some(2),
            "1 releases the finished 2"
        );
        assert_eq!(committed(&mut c, 0, 3), Some(3));
        assert_eq!(c.running(), 0);
        assert_eq!(committed(&mut c, 0, 3), None, "a second finish is ignored");
    }
}
