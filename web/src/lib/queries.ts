// TanStack Query keys and hooks used by several pages.
import { useQuery } from "@tanstack/react-query";
import { api } from "../api/client";

export const useDevices = () => useQuery({ queryKey: ["devices"], queryFn: api.devices, staleTime: Infinity });
export const useTechniques = () => useQuery({ queryKey: ["techniques"], queryFn: api.techniques, staleTime: Infinity });

export const ACTIVE = new Set(["queued", "running"]);
export const STATUSES = ["created", "queued", "running", "completed", "failed", "cancelled"];
export const GOALS = ["balanced", "minimize_size", "minimize_latency", "maximize_accuracy"];
// The ids as /api/datasets spells them and as experiments store them (the list's dataset filter
// matches only this spelling; create accepts it too).
export const PRESET_DATASETS = [
  { id: "fashion-mnist", name: "Fashion-MNIST", size: "28×28×1, 10 classes" },
  { id: "mnist", name: "MNIST", size: "28×28×1, 10 classes" },
  { id: "cifar10", name: "CIFAR-10", size: "32×32×3, 10 classes" },
];
