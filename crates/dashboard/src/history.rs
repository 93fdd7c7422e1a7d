//! The last 15 minutes of frames, so a page opened now starts with full charts. A fixed
//! ring: memory stays bounded however long the node runs.

use std::collections::VecDeque;
use std::sync::Arc;

/// One frame a second for 15 minutes.
pub const KEEP: usize = 15 * 60;

pub struct Ring {
    frames: VecDeque<Arc<str>>,
    capacity: usize,
}

impl Ring {
    pub fn new(capacity: usize) -> Self {
        Ring {
            frames: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    pub fn push(&mut self, frame: Arc<str>) {
        if self.frames.len() == self.capacity {
            self.frames.pop_front();
        }
        self.frames.push_back(frame);
    }

    /// Every frame kept, oldest first, as one JSON array.
    pub fn to_json(&self) -> String {
        let size: usize = self.frames.iter().map(|f| f.len() + 1).sum();
        let mut out = String::with_capacity(size + 2);
        out.push('[');
        for (i, frame) in self.frames.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(frame);
        }
        out.push(']');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_frames_up_to_capacity() {
        let mut ring = Ring::new(3);
        assert_eq!(ring.to_json(), "[]");
        for i in 0..5 {
            ring.push(Arc::from(format!("{{\"i\":{i}}}")));
        }
        assert_eq!(ring.to_json(), r#"[{"i":2},{"i":3},{"i":4}]"#);
        let parsed: serde_json::Value = serde_json::from_str(&ring.to_json()).unwrap();
        assert_eq!(parsed.as_array().map(Vec::len), Some(3));
    }
}
