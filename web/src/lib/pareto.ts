// The Pareto front of a trade-off chart: the points no other point beats on both axes (higher
// accuracy is better; lower cost — size or latency — is better).

export type Point = { id: string; cost: number; accuracy: number };

/** Ids on the front, sorted by cost; ties in both figures keep every tied point. */
export function paretoFront<T extends Point>(points: T[]): T[] {
  const valid = points.filter((p) => Number.isFinite(p.cost) && Number.isFinite(p.accuracy));
  const sorted = [...valid].sort((a, b) => a.cost - b.cost || b.accuracy - a.accuracy);
  const front: T[] = [];
  let best = -Infinity;
  for (const p of sorted) {
    const last = front[front.length - 1];
    if (p.accuracy > best) {
      front.push(p);
      best = p.accuracy;
    } else if (last && p.accuracy === last.accuracy && p.cost === last.cost) {
      front.push(p);
    }
  }
  return front;
}

/** Whether p is dominated: another point is at least as good on both axes and better on one. */
export function dominated(p: Point, all: Point[]): boolean {
  return all.some((q) => q !== p && q.cost <= p.cost && q.accuracy >= p.accuracy && (q.cost < p.cost || q.accuracy > p.accuracy));
}
