import { describe, expect, it } from "vitest";
import { dominated, paretoFront } from "./pareto";

const p = (id: string, cost: number, accuracy: number) => ({ id, cost, accuracy });

describe("paretoFront", () => {
  it("keeps the points nothing beats on both axes, by cost", () => {
    const pts = [p("fp32", 1.7, 91.0), p("int8", 0.43, 90.8), p("int4", 0.22, 88.0), p("pruned", 1.7, 90.0), p("bad", 0.5, 85)];
    expect(paretoFront(pts).map((x) => x.id)).toEqual(["int4", "int8", "fp32"]);
  });
  it("drops a point equal in cost but worse in accuracy, keeps exact ties", () => {
    const pts = [p("a", 1, 90), p("b", 1, 89), p("c", 1, 90)];
    expect(paretoFront(pts).map((x) => x.id).sort()).toEqual(["a", "c"]);
  });
  it("ignores missing figures", () => {
    expect(paretoFront([p("a", NaN, 90), p("b", 2, 80)]).map((x) => x.id)).toEqual(["b"]);
    expect(paretoFront([])).toEqual([]);
  });
  it("agrees with dominated()", () => {
    const pts = Array.from({ length: 40 }, (_, i) => p(String(i), ((i * 37) % 17) + 1, ((i * 53) % 23) + 70));
    const front = new Set(paretoFront(pts).map((x) => x.id));
    for (const x of pts) expect(front.has(x.id)).toBe(!dominated(x, pts));
  });
});
