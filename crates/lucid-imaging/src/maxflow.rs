//! Minimum s–t cut by the Boykov–Kolmogorov max-flow algorithm ("An Experimental Comparison of
//! Min-Cut/Max-Flow Algorithms for Energy Minimization in Vision", 2004): two search trees grow
//! from the source and the sink, a path is found where they meet, and after augmenting, the
//! nodes cut off from their tree are re-adopted. It is the algorithm of choice for the grid
//! graphs of image segmentation, where it finds the cut in a few passes over the nodes.

use std::collections::VecDeque;

const NONE: u32 = u32::MAX;
const TERMINAL: u32 = u32::MAX - 1;
const ORPHAN: u32 = u32::MAX - 2;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tree {
    Free,
    Source,
    Sink,
}

/// A graph of `n` nodes: terminal capacities per node and pairs of opposite arcs between nodes.
pub struct Graph {
    /// Residual capacity to the terminals: positive from the source, negative to the sink.
    terminal: Vec<f64>,
    first: Vec<u32>,
    /// Arcs come in pairs: arc `a`'s opposite is `a ^ 1`.
    head: Vec<u32>,
    next: Vec<u32>,
    residual: Vec<f64>,
    tree: Vec<Tree>,
    /// The arc from a node to its parent in its tree, or TERMINAL, ORPHAN or NONE.
    parent: Vec<u32>,
    /// When each node's distance to its terminal was last known (the adoption heuristic).
    stamp: Vec<u32>,
    dist: Vec<u32>,
}

impl Graph {
    pub fn new(nodes: usize, edges_hint: usize) -> Self {
        Graph {
            terminal: vec![0.0; nodes],
            first: vec![NONE; nodes],
            head: Vec::with_capacity(edges_hint * 2),
            next: Vec::with_capacity(edges_hint * 2),
            residual: Vec::with_capacity(edges_hint * 2),
            tree: vec![Tree::Free; nodes],
            parent: vec![NONE; nodes],
            stamp: vec![0; nodes],
            dist: vec![0; nodes],
        }
    }

    /// Capacity `source` from the source to `node` and `sink` from it to the sink (either may
    /// be zero); only their difference matters to the cut.
    pub fn set_terminals(&mut self, node: usize, source: f64, sink: f64) {
        self.terminal[node] = source - sink;
    }

    /// An edge between `p` and `q` with capacity `forward` from p to q and `backward` back.
    pub fn add_edge(&mut self, p: usize, q: usize, forward: f64, backward: f64) {
        for (from, to, cap) in [(p, q, forward), (q, p, backward)] {
            let arc = self.head.len() as u32;
            self.head.push(to as u32);
            self.next.push(self.first[from]);
            self.residual.push(cap);
            self.first[from] = arc;
        }
    }

    /// Runs the algorithm; afterwards [`Graph::on_source_side`] says where each node fell.
    pub fn solve(&mut self) {
        let n = self.terminal.len();
        let mut active: VecDeque<u32> = VecDeque::new();
        for i in 0..n {
            if self.terminal[i] != 0.0 {
                self.tree[i] = if self.terminal[i] > 0.0 {
                    Tree::Source
                } else {
                    Tree::Sink
                };
                self.parent[i] = TERMINAL;
                self.dist[i] = 1;
                active.push_back(i as u32);
            }
        }
        let mut orphans: VecDeque<u32> = VecDeque::new();
        let mut time = 0u32;
        while let Some(&p) = active.front() {
            let p = p as usize;
            if self.parent[p] == NONE {
                active.pop_front();
                continue;
            }
            let Some(middle) = self.grow(p, &mut active) else {
                active.pop_front();
                continue;
            };
            time += 1;
            self.augment(middle, &mut orphans);
            while let Some(o) = orphans.pop_front() {
                self.adopt(o as usize, time, &mut active, &mut orphans);
            }
        }
    }

    /// Whether `node` ended on the source side of the minimum cut.
    pub fn on_source_side(&self, node: usize) -> bool {
        self.tree[node] == Tree::Source
    }

    /// Grows `p`'s tree by its free neighbours; answers the arc from the source tree to the
    /// sink tree where they meet.
    fn grow(&mut self, p: usize, active: &mut VecDeque<u32>) -> Option<usize> {
        let from_source = self.tree[p] == Tree::Source;
        let mut a = self.first[p];
        while a != NONE {
            let arc = a as usize;
            let q = self.head[arc] as usize;
            // The arc flow would take: p→q in the source tree, q→p in the sink tree.
            let open = if from_source {
                self.residual[arc]
            } else {
                self.residual[arc ^ 1]
            };
            if open > 0.0 {
                match self.tree[q] {
                    Tree::Free => {
                        self.tree[q] = self.tree[p];
                        self.parent[q] = (arc ^ 1) as u32;
                        self.stamp[q] = self.stamp[p];
                        self.dist[q] = self.dist[p] + 1;
                        active.push_back(q as u32);
                    }
                    t if t != self.tree[p] => {
                        return Some(if from_source { arc } else { arc ^ 1 });
                    }
                    _ => {}
                }
            }
            a = self.next[arc];
        }
        None
    }

    /// Pushes the path's bottleneck through `middle` (source tree → sink tree) and the two tree
    /// paths to the terminals; nodes whose link to their parent saturates become orphans.
    fn augment(&mut self, middle: usize, orphans: &mut VecDeque<u32>) {
        let s_end = self.head[middle ^ 1] as usize;
        let t_end = self.head[middle] as usize;
        let mut flow = self.residual[middle];
        let mut i = s_end;
        while self.parent[i] != TERMINAL {
            let a = self.parent[i] as usize;
            flow = flow.min(self.residual[a ^ 1]);
            i = self.head[a] as usize;
        }
        flow = flow.min(self.terminal[i]);
        let mut i = t_end;
        while self.parent[i] != TERMINAL {
            let a = self.parent[i] as usize;
            flow = flow.min(self.residual[a]);
            i = self.head[a] as usize;
        }
        flow = flow.min(-self.terminal[i]);

        self.residual[middle] -= flow;
        self.residual[middle ^ 1] += flow;
        let mut i = s_end;
        loop {
            let a = self.parent[i];
            if a == TERMINAL {
                self.terminal[i] -= flow;
                if self.terminal[i] <= 0.0 {
                    self.make_orphan(i, orphans);
                }
                break;
            }
            let a = a as usize;
            self.residual[a] += flow;
            self.residual[a ^ 1] -= flow;
            let up = self.head[a] as usize;
            if self.residual[a ^ 1] <= 0.0 {
                self.make_orphan(i, orphans);
            }
            i = up;
        }
        let mut i = t_end;
        loop {
            let a = self.parent[i];
            if a == TERMINAL {
                self.terminal[i] += flow;
                if self.terminal[i] >= 0.0 {
                    self.make_orphan(i, orphans);
                }
                break;
            }
            let a = a as usize;
            self.residual[a ^ 1] += flow;
            self.residual[a] -= flow;
            let up = self.head[a] as usize;
            if self.residual[a] <= 0.0 {
                self.make_orphan(i, orphans);
            }
            i = up;
        }
    }

    fn make_orphan(&mut self, i: usize, orphans: &mut VecDeque<u32>) {
        self.parent[i] = ORPHAN;
        orphans.push_back(i as u32);
    }

    /// Finds the orphan `p` a new parent in its tree (one still rooted at the terminal, the
    /// nearest to it), or frees it and orphans its children.
    fn adopt(
        &mut self,
        p: usize,
        time: u32,
        active: &mut VecDeque<u32>,
        orphans: &mut VecDeque<u32>,
    ) {
        let in_source = self.tree[p] == Tree::Source;
        let mut best: Option<(u32, u32)> = None;
        let mut a = self.first[p];
        while a != NONE {
            let arc = a as usize;
            let q = self.head[arc] as usize;
            // Flow must be able to reach p from q (source tree) or q from p (sink tree).
            let open = if in_source {
                self.residual[arc ^ 1]
            } else {
                self.residual[arc]
            };
            if self.tree[q] == self.tree[p]
                && open > 0.0
                && let Some(d) = self.rooted_distance(q, time)
                && best.is_none_or(|(_, bd)| d < bd)
            {
                best = Some((arc as u32, d));
            }
            a = self.next[arc];
        }
        if let Some((arc, d)) = best {
            self.parent[p] = arc;
            self.stamp[p] = time;
            self.dist[p] = d + 1;
            return;
        }
        // No parent: p leaves its tree; neighbours that could reach it become active again,
        // and its children are orphans.
        self.parent[p] = NONE;
        let mut a = self.first[p];
        while a != NONE {
            let arc = a as usize;
            let q = self.head[arc] as usize;
            if self.tree[q] == self.tree[p] {
                let open = if in_source {
                    self.residual[arc ^ 1]
                } else {
                    self.residual[arc]
                };
                if open > 0.0 {
                    active.push_back(q as u32);
                }
                let qa = self.parent[q];
                if qa != TERMINAL
                    && qa != ORPHAN
                    && qa != NONE
                    && self.head[qa as usize] as usize == p
                {
                    self.make_orphan(q, orphans);
                }
            }
            a = self.next[arc];
        }
        self.tree[p] = Tree::Free;
    }

    /// The distance from `q` up to its terminal, or None when its path ends at an orphan.
    /// Nodes on a valid path are stamped with `time` and their distances, so later walks stop
    /// early.
    fn rooted_distance(&mut self, q: usize, time: u32) -> Option<u32> {
        let mut d = 0;
        let mut j = q;
        loop {
            if self.stamp[j] == time {
                d += self.dist[j];
                break;
            }
            let a = self.parent[j];
            d += 1;
            if a == TERMINAL {
                self.stamp[j] = time;
                self.dist[j] = 1;
                break;
            }
            if a == ORPHAN || a == NONE {
                return None;
            }
            j = self.head[a as usize] as usize;
        }
        // Stamp the path with the distances just learned.
        let mut j = q;
        let mut dj = d;
        while self.stamp[j] != time {
            self.stamp[j] = time;
            self.dist[j] = dj;
            dj -= 1;
            j = self.head[self.parent[j] as usize] as usize;
        }
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Edge = (usize, usize, f64, f64);

    /// Seeded pseudo-random digits 0–9, as capacities.
    fn digits(mut seed: u64) -> impl FnMut() -> f64 {
        move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) % 10) as f64
        }
    }

    /// The capacity of the cut that puts the nodes `source_side` picks on the source side.
    fn cut_cost(
        terminals: &[(f64, f64)],
        edges: &[Edge],
        source_side: impl Fn(usize) -> bool,
    ) -> f64 {
        let mut c = 0.0;
        for (i, (s, t)) in terminals.iter().enumerate() {
            c += if source_side(i) { *t } else { *s };
        }
        for (p, q, f, b) in edges {
            match (source_side(*p), source_side(*q)) {
                (true, false) => c += f,
                (false, true) => c += b,
                _ => {}
            }
        }
        c
    }

    /// The cut of a small graph checked against every labelling.
    #[test]
    fn finds_the_minimum_cut_of_small_graphs() {
        let mut next = digits(7);
        for _ in 0..200 {
            let n = 6;
            let terminals: Vec<(f64, f64)> = (0..n).map(|_| (next(), next())).collect();
            let mut edges = vec![];
            for p in 0..n {
                for q in p + 1..n {
                    if next() < 5.0 {
                        edges.push((p, q, next(), next()));
                    }
                }
            }
            let mut g = Graph::new(n, edges.len());
            for (i, (s, t)) in terminals.iter().enumerate() {
                g.set_terminals(i, *s, *t);
            }
            for (p, q, f, b) in &edges {
                g.add_edge(*p, *q, *f, *b);
            }
            g.solve();
            let found = cut_cost(&terminals, &edges, |i| g.on_source_side(i));
            let best = (0..1u32 << n)
                .map(|m| cut_cost(&terminals, &edges, |i| m >> i & 1 == 1))
                .fold(f64::INFINITY, f64::min);
            assert_eq!(found, best);
        }
    }

    /// On grids large enough for deep trees and many adoptions, the cut's cost equals the
    /// maximum flow found by plain augmenting paths (Edmonds–Karp), which is the minimum cut.
    #[test]
    fn cut_cost_equals_the_maximum_flow_on_grids() {
        let mut next = digits(3);
        for _ in 0..4 {
            let side = 24;
            let n = side * side;
            // Node n is the source, n + 1 the sink, in the reference's capacity matrix.
            let mut cap = vec![vec![0.0; n + 2]; n + 2];
            let mut g = Graph::new(n, 4 * n);
            let mut terminals = vec![];
            let mut edges = vec![];
            for i in 0..n {
                let (s, t) = (
                    next() * (next() < 3.0) as u8 as f64,
                    next() * (next() < 3.0) as u8 as f64,
                );
                g.set_terminals(i, s, t);
                terminals.push((s, t));
                cap[n][i] += s;
                cap[i][n + 1] += t;
                let (x, y) = (i % side, i / side);
                for (dx, dy) in [(1, 0), (0, 1), (1, 1)] {
                    if x + dx < side && y + dy < side {
                        let q = (y + dy) * side + x + dx;
                        let (f, b) = (next(), next());
                        g.add_edge(i, q, f, b);
                        edges.push((i, q, f, b));
                        cap[i][q] += f;
                        cap[q][i] += b;
                    }
                }
            }
            g.solve();
            let cut = cut_cost(&terminals, &edges, |i| g.on_source_side(i));
            let mut flow = 0.0;
            loop {
                let mut prev = vec![usize::MAX; n + 2];
                let mut queue = VecDeque::from([n]);
                prev[n] = n;
                while let Some(u) = queue.pop_front() {
                    for v in 0..n + 2 {
                        if prev[v] == usize::MAX && cap[u][v] > 0.0 {
                            prev[v] = u;
                            queue.push_back(v);
                        }
                    }
                }
                if prev[n + 1] == usize::MAX {
                    break;
                }
                let mut push = f64::INFINITY;
                let mut v = n + 1;
                while v != n {
                    push = push.min(cap[prev[v]][v]);
                    v = prev[v];
                }
                let mut v = n + 1;
                while v != n {
                    cap[prev[v]][v] -= push;
                    cap[v][prev[v]] += push;
                    v = prev[v];
                }
                flow += push;
            }
            assert!(flow > 0.0);
            assert_eq!(cut, flow);
        }
    }
}
