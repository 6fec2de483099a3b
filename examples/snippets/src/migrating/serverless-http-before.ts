// Before, on AWS Lambda: serverless-http. FC 3.0's event is not API Gateway's, so this does not run on FC as is.
import express from 'express';
import serverless from 'serverless-http';

const app = express();
app.use(express.json());
app.post('/orders', (req, res) => {
  res.status(201).json({ id: 42, requestId: req.apiGateway?.context.awsRequestId });
});

export const handler = serverless(app, { binary: ['image/*'] }); // which answers go base64
