// Before, on AWS Lambda: @vendia/serverless-express (now @codegenie/serverless-express).
import serverlessExpress, { getCurrentInvoke } from '@vendia/serverless-express';
import express from 'express';

const app = express();
app.use(express.json());
app.post('/orders', (_req, res) => {
  const { context } = getCurrentInvoke(); // module-wide: the latest invocation's, not this request's
  res.status(201).json({ id: 42, requestId: context?.awsRequestId });
});

export const handler = serverlessExpress({ app });
