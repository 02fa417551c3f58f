import { lazy, Suspense, useEffect } from "react";
import { Redirect, Route, Switch, useLocation } from "wouter";
import { useQueryClient } from "@tanstack/react-query";
import { ErrorBoundary } from "./components/ErrorBoundary";
import { Layout } from "./components/Layout";
import { Empty, Loading } from "./components/ui";
import { useToken } from "./lib/auth";
import { initLive } from "./lib/live";
import LoginPage from "./pages/Login";
import ProjectsPage from "./pages/Projects";
import BranchPage from "./pages/Branch";
import FlowPage from "./pages/Flow";
import JobPage from "./pages/Job";
import ResultsPage from "./pages/Results";
import TestCasePage from "./pages/TestCase";
import AgentsPage from "./pages/Agents";
import SettingsPage from "./pages/Settings";
import DiagnosticsPage from "./pages/Diagnostics";
import ToolsPage from "./pages/Tools";
import UsersPage from "./pages/Users";
import ProfilePage from "./pages/Profile";
import MembersPage from "./pages/Members";
import AuditPage from "./pages/Audit";
import SecretsPage from "./pages/Secrets";
import LogSearchPage from "./pages/LogSearch";

// Only the heavy parts load on demand: the stage editor (CodeMirror) and, inside the test
// case page, the chart (uPlot). Pages themselves are in the main bundle: a lazy page would
// suspend, and React holds a suspended page back for at least 300 ms.
const StageEditorPage = lazy(() => import("./pages/StageEditor"));

function NotFound() {
  return (
    <Empty title="Page not found" icon="?">
      Nothing lives at this address. <a href="/">Go to the projects</a>.
    </Empty>
  );
}

function RunFlowPage({ id }: { id: string }) {
  return <FlowPage runId={Number(id)} />;
}

export function App() {
  const token = useToken();
  const qc = useQueryClient();
  const [loc] = useLocation();

  useEffect(() => {
    const live = initLive(qc);
    if (token) live.start();
    else {
      live.stop();
      qc.clear();
    }
  }, [token, qc]);

  if (!token) {
    if (loc === "/login") return <LoginPage />;
    const next = loc + window.location.search + window.location.hash;
    return <Redirect to={`/login${next && next !== "/" ? `?next=${encodeURIComponent(next)}` : ""}`} replace />;
  }
  return (
    <Layout>
      <ErrorBoundary resetKey={loc}>
      <Suspense fallback={<Loading what="Loading the page" />}>
        <Switch>
          <Route path="/login">{() => <Redirect to={new URLSearchParams(window.location.search).get("next") || "/"} replace />}</Route>
          <Route path="/">{() => <ProjectsPage />}</Route>
          <Route path="/branches/:id">{(p) => <BranchPage id={Number(p.id)} />}</Route>
          <Route path="/branches/:id/:tab">{(p) => <BranchPage id={Number(p.id)} tab={p.tab} />}</Route>
          <Route path="/branches/:bid/stages/new">{(p) => <StageEditorPage branchId={Number(p.bid)} />}</Route>
          <Route path="/stages/:id">{(p) => <StageEditorPage id={Number(p.id)} />}</Route>
          <Route path="/flows/:id">{(p) => <FlowPage id={Number(p.id)} />}</Route>
          <Route path="/runs/:id">{(p) => <RunFlowPage id={p.id} />}</Route>
          <Route path="/runs/:id/results">{(p) => <ResultsPage runId={Number(p.id)} />}</Route>
          <Route path="/jobs/:id">{(p) => <JobPage id={Number(p.id)} />}</Route>
          <Route path="/test-cases/:id">{(p) => <TestCasePage id={Number(p.id)} />}</Route>
          <Route path="/logs">{() => <LogSearchPage />}</Route>
          <Route path="/agents">{() => <AgentsPage />}</Route>
          <Route path="/tools">{() => <ToolsPage />}</Route>
          <Route path="/settings">{() => <SettingsPage />}</Route>
          <Route path="/diagnostics">{() => <DiagnosticsPage />}</Route>
          <Route path="/users">{() => <UsersPage />}</Route>
          <Route path="/audit">{() => <AuditPage />}</Route>
          <Route path="/profile">{() => <ProfilePage />}</Route>
          <Route path="/projects/:id/members">{(p) => <MembersPage projectId={Number(p.id)} />}</Route>
          <Route path="/projects/:id/secrets">{(p) => <SecretsPage projectId={Number(p.id)} />}</Route>
          <Route>{() => <NotFound />}</Route>
        </Switch>
      </Suspense>
      </ErrorBoundary>
    </Layout>
  );
}
