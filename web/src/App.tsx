import { lazy, Suspense, useEffect, useState } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { api } from "./api/client";
import { Link, match, useLocation } from "./lib/router";
import { Loading } from "./components/ui";
import { ExperimentsPage } from "./pages/Experiments";
import { DevicesPage } from "./pages/Devices";

// The wizard, the experiment page (progress, results, charts) and compare load on demand so the
// list opens fast; the chart library comes only with them.
const CreatePage = lazy(() => import("./pages/Create"));
const ExperimentPage = lazy(() => import("./pages/Experiment"));
const ComparePage = lazy(() => import("./pages/Compare"));

function ThemeToggle() {
  const [dark, setDark] = useState(() => document.documentElement.classList.contains("dark"));
  useEffect(() => {
    document.documentElement.classList.toggle("dark", dark);
  }, [dark]);
  return (
    <button
      type="button"
      className="btn-secondary"
      aria-pressed={dark}
      onClick={() => {
        const next = !dark;
        setDark(next);
        try {
          localStorage.setItem("edgeopt-theme", next ? "dark" : "light");
        } catch {
          /* private mode: the choice lasts this page */
        }
      }}
    >
      {dark ? "Light theme" : "Dark theme"}
    </button>
  );
}

function NavLink({ to, children, active }: { to: string; children: string; active: boolean }) {
  return (
    <Link
      to={to}
      aria-current={active ? "page" : undefined}
      className={`rounded-md px-2 py-1 text-sm font-medium ${active ? "bg-slate-200 dark:bg-slate-800" : "hover:bg-slate-100 dark:hover:bg-slate-800"}`}
    >
      {children}
    </Link>
  );
}

export function App() {
  const { path } = useLocation();
  const qc = useQueryClient();
  // An experiment's data is fetched while its page's code (with the charts) still loads.
  const opened = match("/experiments/:id", path)?.id;
  useEffect(() => {
    if (!opened) return;
    void qc.prefetchQuery({ queryKey: ["experiment", opened], queryFn: () => api.experiment(opened) });
    void qc.prefetchQuery({ queryKey: ["results", opened], queryFn: () => api.results(opened) });
    void qc.prefetchQuery({ queryKey: ["devices"], queryFn: api.devices, staleTime: Infinity });
  }, [opened, qc]);
  let page;
  let m;
  if (path === "/" || path === "/experiments") page = <ExperimentsPage />;
  else if (path === "/new") page = <CreatePage />;
  else if ((m = match("/experiments/:id", path))) page = <ExperimentPage id={m.id} key={m.id} />;
  else if (path === "/compare") page = <ComparePage />;
  else if (path === "/devices") page = <DevicesPage />;
  else
    page = (
      <div className="card">
        <h1 className="text-xl font-semibold">Page not found</h1>
        <p className="muted mt-2">
          There is no page at <code>{path}</code>. <Link to="/" className="text-sky-700 underline dark:text-sky-400">Go to the experiments</Link>.
        </p>
      </div>
    );
  useEffect(() => {
    document.title = "EdgeOpt";
  }, [path]);
  return (
    <div className="min-h-screen">
      <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:z-50 focus:rounded focus:bg-white focus:p-2 dark:focus:bg-slate-900">
        Skip to content
      </a>
      <header className="border-b border-slate-200 dark:border-slate-800">
        <div className="mx-auto flex max-w-7xl flex-wrap items-center gap-2 px-4 py-3">
          <Link to="/" className="mr-2 text-lg font-bold tracking-tight">
            EdgeOpt
          </Link>
          <nav aria-label="Main" className="flex flex-wrap items-center gap-1">
            <NavLink to="/" active={path === "/" || path.startsWith("/experiments")}>
              Experiments
            </NavLink>
            <NavLink to="/new" active={path === "/new"}>
              New experiment
            </NavLink>
            <NavLink to="/compare" active={path === "/compare"}>
              Compare
            </NavLink>
            <NavLink to="/devices" active={path === "/devices"}>
              Devices
            </NavLink>
          </nav>
          <div className="ml-auto">
            <ThemeToggle />
          </div>
        </div>
      </header>
      <main id="main" className="mx-auto max-w-7xl px-4 py-6">
        <Suspense fallback={<Loading what="the page" />}>{page}</Suspense>
      </main>
    </div>
  );
}
