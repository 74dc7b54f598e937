import './tracing'; // first: see tracing.ts
import { runApi } from './app/bootstrap';

runApi().catch((err: unknown) => {
  // Start-up failed for a reason other than configuration (e.g. the database is unreachable).
  console.error(err);
  process.exit(1);
});
