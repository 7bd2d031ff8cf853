//! The `n` best of a stream by score, ties broken by a key: the result never depends on the
//! order items arrive in (batching, sharding).

/// The `n` items with the highest scores, best first; equal scores rank the lower key first.
#[derive(Debug, Clone)]
pub struct TopN<K, T> {
    n: usize,
    best: Vec<(f32, K, T)>,
}

impl<K: Ord, T> TopN<K, T> {
    pub fn new(n: usize) -> Self {
        TopN { n, best: Vec::new() }
    }

    /// Whether an item of `score` and `key` would enter the list now.
    pub fn admits(&self, score: f32, key: &K) -> bool {
        self.best.len() < self.n || self.best.last().is_some_and(|b| Self::better(score, key, b))
    }

    /// Offers an item; `item` is built only when it enters the list.
    pub fn offer_with(&mut self, score: f32, key: K, item: impl FnOnce() -> T) {
        if !self.admits(score, &key) {
            return;
        }
        let at = self.best.iter().position(|b| Self::better(score, &key, b)).unwrap_or(self.best.len());
        self.best.insert(at, (score, key, item()));
        self.best.truncate(self.n);
    }

    pub fn offer(&mut self, score: f32, key: K, item: T) {
        self.offer_with(score, key, || item);
    }

    /// `(score, key, item)`, best first.
    pub fn items(&self) -> &[(f32, K, T)] {
        &self.best
    }

    pub fn into_items(self) -> Vec<(f32, K, T)> {
        self.best
    }

    fn better(score: f32, key: &K, than: &(f32, K, T)) -> bool {
        score > than.0 || (score == than.0 && *key < than.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_whatever_the_order() {
        let items = [(1.0, 3), (2.0, 1), (2.0, 0), (0.5, 2), (2.0, 4)];
        let mut a = TopN::new(3);
        let mut b = TopN::new(3);
        for &(s, k) in &items {
            a.offer(s, k, ());
        }
        for &(s, k) in items.iter().rev() {
            b.offer(s, k, ());
        }
        let keys = |t: &TopN<i32, ()>| t.items().iter().map(|x| x.1).collect::<Vec<_>>();
        assert_eq!(keys(&a), vec![0, 1, 4]);
        assert_eq!(keys(&a), keys(&b));
        let mut none = TopN::new(0);
        none.offer(1.0, 0, ());
        assert!(none.items().is_empty());
    }
}
