import { describe, expect, it } from "vitest";
import { classList, classRows, comparable, confusionCells, hasPerClass, newConfusions, validPerClass, worstClasses, type PerClassResults } from "./perclass";
import fixture from "./perclass.fixture.json";

const r = fixture as unknown as PerClassResults;

describe("per-class data", () => {
  it("names each output index from results.classes", () => {
    expect(classList(r).map((c) => `${c.index}:${c.name}`)).toEqual(["0:cat", "1:dog", "2:fox"]);
  });
  it("falls back to 'class i' for unnamed indices", () => {
    expect(classList({ ...r, classes: [{ index: 1, name: "dog" }] }).map((c) => c.name)).toEqual(["class 0", "dog", "class 2"]);
  });
  it("lists the completed variants with per-class data only", () => {
    expect(comparable(r)).toEqual(["ptq_int8", "prune_unstructured"]);
  });
  it("computes accuracy from counts, the delta in points, and null for a class without images", () => {
    const rows = classRows(r, "ptq_int8");
    expect(rows.map((x) => x.support)).toEqual([10, 8, 0]);
    expect(rows[0].baseline).toBeCloseTo(90);
    expect(rows[0].variant).toBeCloseTo(60);
    expect(rows[0].delta).toBeCloseTo(-30);
    expect(rows[1].delta).toBeCloseTo(12.5);
    expect(rows[2]).toMatchObject({ baseline: null, variant: null, delta: null });
  });
  it("names the classes a variant hurt, worst first", () => {
    expect(worstClasses(classRows(r, "ptq_int8")).map((x) => x.name)).toEqual(["cat"]);
    expect(worstClasses(classRows(r, "prune_unstructured"))).toEqual([]);
  });
  it("shapes the confusion matrix: shares of the true class, changes against the baseline", () => {
    const cells = confusionCells(r, "ptq_int8")!;
    expect(cells[0][0]).toEqual({ count: 6, share: 0.6, base: 9, change: -3 });
    expect(cells[0][1]).toEqual({ count: 4, share: 0.4, base: 1, change: 3 });
    expect(cells[2][2].share).toBe(0);
    expect(newConfusions(cells, classList(r))).toEqual([{ truth: "cat", predicted: "dog", change: 3 }]);
    // The baseline against itself: no change anywhere.
    expect(confusionCells(r, "fp32")!.flat().every((c) => c.change === 0)).toBe(true);
  });
  it("tolerates runs without per-class data and malformed records", () => {
    const old: PerClassResults = { baseline: { technique: "fp32" }, variants: [{ technique: "ptq_int8", status: "completed" }] };
    expect(hasPerClass(old)).toBe(false);
    expect(comparable(old)).toEqual([]);
    expect(classRows(old, "ptq_int8")).toEqual([]);
    expect(confusionCells(old, "ptq_int8")).toBeNull();
    expect(validPerClass({ support: [1, 2], correct: [1], accuracy: [1, 1], confusion: [[1, 0], [0, 2]] })).toBeNull();
    expect(validPerClass({ support: [1, 2], correct: [1, 2], accuracy: [1, 1], confusion: [[1, 0], [0]] })).toBeNull();
    expect(validPerClass(null)).toBeNull();
    expect(hasPerClass(r)).toBe(true);
  });
});
